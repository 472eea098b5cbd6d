"""The inference bundle, and the one test on a checkpoint written by the real training bundle."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from infer_fixtures import bright_checkpoint

from medseg_masksup.commands import infer
from medseg_masksup.inference.folder import run_folder
from medseg_masksup.errors import NothingProcessedError

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "masksup" / "inference.json"


def _python(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_bundle_defaults_are_the_library_defaults():
    import dataclasses

    from medseg_masksup.inference.options import InferenceOptions

    config = json.loads(BUNDLE.read_text())
    defaults = {k: p.default for k, p in inspect.signature(run_folder).parameters.items() if p.default is not inspect.Parameter.empty}
    defaults.update({f.name: f.default for f in dataclasses.fields(InferenceOptions)})
    for key in ("tta", "threshold", "keep_largest", "fill_holes", "mode", "save_prob", "overlay", "intensity_window",
                "batch_size", "device", "progress"):
        assert config[key] == defaults[key], key
        # every option reaches the run: through the one InferenceOptions object or the writer
        assert config["options"].get(key) == f"@{key}" or config["evaluator"].get(key) == f"@{key}", key
    assert config["run"] == ["$medseg_masksup.inference.folder.check_run(@input, @output_dir, @ckpt)", "$@evaluator.run()"]
    assert config["options"]["_target_"].endswith("InferenceOptions")


def test_bundle_with_nothing_readable_fails_naming_the_file(tmp_path):
    from monai.bundle.scripts import run

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.png").write_bytes(b"garbage")
    with pytest.raises(Exception) as err:
        run(config_file=str(BUNDLE), input=str(tmp_path / "in"), output_dir=str(tmp_path / "out"),
            ckpt=str(bright_checkpoint()), progress=False)
    cause = err.value
    while cause.__cause__ is not None and not isinstance(cause, NothingProcessedError):
        cause = cause.__cause__
    assert isinstance(cause, NothingProcessedError)
    assert f"{tmp_path / 'in' / 'scan.png'}: cannot be read as an image" in str(cause)


@pytest.mark.integration
def test_real_training_bundle_checkpoint_through_inference_and_evaluation_bundles(tmp_path):
    """Train 1 epoch with bundles/masksup/train.json, then: the inference bundle (CLI) equals
    ``medseg-masksup infer``, and evaluation on the held-out fold reproduces training's validation Dice."""
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from medseg_masksup.inference.evaluation import evaluate_checkpoint
    from medseg_masksup.tracking.store import sqlite_uri

    train = _python("-m", "monai.bundle", "run", "training", "--config_file", "bundles/masksup/train.json",
                    "--output_dir", str(tmp_path / "runs"), "--epochs", "1", "--img_size", "[32,32]",
                    "--synthetic_cases", "20", "--synthetic_size", "32", "--batch_size", "4")
    assert train.returncode == 0, train.stderr[-3000:]
    (ckpt,) = (tmp_path / "runs" / "synthetic-glands" / "masksup").glob("*/model.pt")
    run_summary = json.loads((ckpt.parent / "summary.json").read_text())
    images = tmp_path / "runs" / "synthetic" / "images"

    bundle = _python("-m", "monai.bundle", "run", "--config_file", str(BUNDLE), "--input", str(images),
                     "--output_dir", str(tmp_path / "bundle_out"), "--ckpt", str(ckpt), "--tta", "True", "--progress", "False")
    assert bundle.returncode == 0, bundle.stderr[-3000:]
    assert infer.main(["--input", str(images), "--output_dir", str(tmp_path / "cli_out"), "--ckpt", str(ckpt.parent),
                       "--tta", "--no_progress"]) == 0
    for name in ("case_000", "case_007"):
        from_bundle = np.array(Image.open(tmp_path / "bundle_out" / f"{name}_mask.png"))
        from_cli = np.array(Image.open(tmp_path / "cli_out" / f"{name}_mask.png"))
        assert from_bundle.shape == np.array(Image.open(images / f"{name}.png")).shape[:2]
        np.testing.assert_array_equal(from_bundle, from_cli)

    uri = sqlite_uri(str(tmp_path / "runs" / "mlflow.db"))
    report = evaluate_checkpoint(ckpt, tmp_path / "runs" / "synthetic" / "datalist.json", tmp_path / "eval",
                                 tracking_uri=uri, progress=False, verbose=False)
    assert report.split == "heldout-fold0"
    assert report.summary["dice"]["mean"] == pytest.approx(run_summary["best_val_dice"], abs=1e-4)
    run = MlflowClient(uri).get_run(report.mlflow_run_id)
    assert run.data.tags["mlflow.parentRunId"] == run_summary["mlflow_run_id"]
