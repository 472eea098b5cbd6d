"""The user's command, end to end at a tiny size: bundle parses, trains, checkpoints and records to MLflow."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import mlflow.pytorch
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.tracking.store import sqlite_uri

TINY = ["--epochs", "1", "--img_size", "[32,32]", "--synthetic_cases", "10", "--synthetic_size", "32", "--batch_size", "4"]


def run_bundle(output_dir, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
           "--output_dir", str(output_dir), *TINY, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"bundle failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def test_bundle_parses_with_the_documented_ids():
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    for key in ("training", "run", "initialize", "epochs", "method", "network", "network_def", "datalist", "dataset_dir",
                "output_dir", "seed", "mask_kind", "mask_ratio", "alpha", "beta", "gamma", "tracking_uri"):
        assert key in parser, key
    parser["network"] = "unet"
    net = parser.get_parsed_content("network_def")
    assert isinstance(net, torch.nn.Module)


def test_training_cache_holds_decoded_resized_images(tmp_path):
    """Regression: a nested Compose counted as random, so CacheDataset cached only file paths."""
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 6, "synthetic_size": 32, "img_size": [32, 32]})
    dataset = parser.get_parsed_content("train#dataset")
    cached = dataset._cache[0]
    assert isinstance(cached["image"], torch.Tensor) and cached["image"].shape == (3, 32, 32)
    assert isinstance(cached["label"], torch.Tensor) and cached["label"].shape == (1, 32, 32)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    masksup = run_bundle(out)
    baseline = run_bundle(out, "--method", "baseline")
    return out, masksup, baseline


@pytest.mark.integration
def test_tiny_training_runs_and_reports(two_runs):
    out, masksup, _ = two_runs
    assert "best val Dice" in masksup.stdout
    ckpts = sorted(out.glob("synthetic-glands/masksup/*/model.pt"))
    assert len(ckpts) == 1
    state = torch.load(ckpts[0], weights_only=True)
    assert state["training_record"]["method"] == "masksup"
    assert state["training_record"]["img_size"] == [32, 32]
    from medseg_masksup.networks import build_network

    build_network("unet").load_state_dict(state["model"])  # the bare backbone, no MaskSup parts


@pytest.mark.integration
def test_baseline_and_masksup_sit_side_by_side_in_one_experiment(two_runs):
    out, _, _ = two_runs
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    experiment = client.get_experiment_by_name("masksup-synthetic-glands")
    assert experiment is not None
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"masksup", "baseline"}
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        params = run.data.params
        assert params["method"] == name
        for key in ("alpha", "beta", "gamma", "mask_kind", "mask_ratio", "network", "network_size", "img_size", "lr",
                    "epochs", "batch_size", "seed", "dataset_fingerprint", "n_parameters"):
            assert key in params, key
        assert params["dataset_fingerprint"].startswith("20:")  # 10 images + 10 masks
        for key in ("train_loss", "train_loss_seg", "train_loss_masked", "train_loss_consistency", "val_dice", "val_iou"):
            history = client.get_metric_history(run.info.run_id, key)
            assert [m.step for m in history] == [1], key
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"checkpoints", "config", "learning_curves.png"} <= artifacts  # figures top level: compare view
        assert any(p.startswith("overlay_") and p.endswith(".png") for p in artifacts)
        assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")} == {"checkpoints/model.pt"}
        config = {a.path for a in client.list_artifacts(run.info.run_id, "config")}
        assert {"config/train.json", "config/training_record.json"} <= config
    assert runs["baseline"].data.params["beta"] == "0.0" and runs["baseline"].data.params["gamma"] == "0.0"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's model-training view
    # both runs list the same training and validation datalists, fingerprinted
    for run in runs.values():
        inputs = {i.dataset.name: (i.dataset.digest, [t.value for t in i.tags]) for i in run.inputs.dataset_inputs}
        assert set(inputs) == {"synthetic-glands-training", "synthetic-glands-validation"}
        assert inputs["synthetic-glands-training"][1] == ["training"]
        assert all(digest.split(":")[0].isdigit() for digest, _ in inputs.values())
        assert int(inputs["synthetic-glands-training"][0].split(":")[0]) + int(inputs["synthetic-glands-validation"][0].split(":")[0]) == 20
    # each run logged its best backbone as an MLflow LoggedModel that pyfunc runs on an ndarray
    mlflow.set_tracking_uri(sqlite_uri(str(out / "mlflow.db")))
    try:
        models = mlflow.search_logged_models(experiment_ids=[experiment.experiment_id], output_format="list")
        assert sorted(m.source_run_id for m in models) == sorted(r.info.run_id for r in runs.values())
        logits = mlflow.pyfunc.load_model(runs["masksup"].data.tags["mlflow_model"]).predict(np.zeros((2, 3, 32, 32), np.float32))
        assert logits.shape == (2, 1, 32, 32)
    finally:
        mlflow.set_tracking_uri(None)
    # the MLflow model is the bare backbone of the best checkpoint
    mlflow.set_tracking_uri(sqlite_uri(str(out / "mlflow.db")))
    try:
        run = runs["masksup"]
        model = mlflow.pytorch.load_model(run.data.tags["mlflow_model"])
    finally:
        mlflow.set_tracking_uri(None)
    from medseg_masksup.networks import build_network

    backbone = build_network("unet").eval()
    ckpt = torch.load(next(out.glob("synthetic-glands/masksup/*/model.pt")), weights_only=True)
    backbone.load_state_dict(ckpt["model"])
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), backbone(x), atol=1e-5)
    assert runs["baseline"].data.metrics["train_loss_masked"] == 0.0
    assert runs["masksup"].data.metrics["train_loss_masked"] > 0.0
    # both trained on the very same data
    assert runs["baseline"].data.params["dataset_fingerprint"] == runs["masksup"].data.params["dataset_fingerprint"]


@pytest.mark.integration
def test_bad_settings_stop_before_any_work_with_one_line_each(tmp_path):
    proc = run_bundle(tmp_path, "--method", "magic", "--mask_ratio", "[0.2,1.5]", "--img_size", "[30,30]", check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        "error: --method 'magic' is not known; choose one of masksup, context, baseline",
        "error: --mask_ratio must lie in [0, 1) with min <= max, got [0.2, 1.5]",
        'error: --img_size [30, 30] does not suit unet (small): each side must be a multiple of 8; try --img_size "[32,32]"',
    ]
    assert not any(tmp_path.iterdir())  # nothing was created: no data, no run folder, no MLflow store
