"""Multi-process training: the bundle merged with multi_gpu_train.json under torchrun, gloo on CPU, 2 processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from medseg_masksup.devices import choose_device
from medseg_masksup.training import distributed as D
from medseg_masksup.data.synthetic import ensure_synthetic_dataset

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "bundles" / "masksup" / "train.json"
MULTI = REPO / "bundles" / "masksup" / "multi_gpu_train.json"


def test_multi_gpu_config_only_overrides_existing_ids():
    """Every ``#``-path the override file sets must exist in train.json (or be a new leaf of an existing
    component), so a renamed id in train.json fails here rather than silently at run time."""
    train, multi = json.loads(TRAIN.read_text()), json.loads(MULTI.read_text())
    new_leaves = {"train#sampler", "validate#sampler", "train#dataloader#sampler", "validate#dataloader#sampler",
                  "finalize", "_desc_"}
    for key in multi:
        path = key.lstrip("+")
        if path in new_leaves:
            continue
        node = train
        for part in path.split("#"):
            assert isinstance(node, dict) and part in node, f"{key}: no '{part}' in train.json"
            node = node[part]
    for component in ("train#dataloader", "validate#dataloader"):
        node = train
        for part in component.split("#"):
            node = node[part]
        assert "_target_" in node, component


@pytest.mark.integration
def test_torchrun_two_processes_gloo_one_run_one_checkpoint(tmp_path):
    datalist = ensure_synthetic_dataset(tmp_path / "data", n_cases=10, size=32)
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "monai.bundle", "run", "training",
        "--config_file", f"['{TRAIN}','{MULTI}']",
        "--output_dir", str(out), "--datalist", str(datalist),
        "--epochs", "1", "--img_size", "[32,32]", "--batch_size", "2",
        # each rank also saves its final weights: DDP keeps them equal although ranks saw different data and masks
        "--finalize", ("[\"$torch.save(@network_def.state_dict(), os.path.join(@output_dir, 'rank' + "
                       "str(medseg_masksup.training.distributed.rank()) + '.pt'))\", '$medseg_masksup.training.distributed.finalize()']"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    # both processes trained (each rank's trainer logs its start)
    assert log.count("MaskSupTrainer - INFO - Engine run resuming from iteration 0") == 2, log[-3000:]

    import mlflow

    client = mlflow.MlflowClient(tracking_uri="sqlite:///" + str(out / "mlflow.db"))
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert len(experiments) == 1, [e.name for e in experiments]
    runs = client.search_runs([experiments[0].experiment_id])
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    assert runs[0].info.status == "FINISHED"
    assert "val_dice" in runs[0].data.metrics

    run_dirs = [p for p in (out / "synthetic-glands").glob("*/*") if p.is_dir()]
    assert len(run_dirs) == 1, run_dirs  # rank 1 made no run folder of its own
    checkpoints = [p for p in out.rglob("model.pt") if "mlruns" not in p.parts]
    assert checkpoints == [run_dirs[0] / "model.pt"], checkpoints
    state = torch.load(checkpoints[0], map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"]), "checkpoint must hold the bare backbone"

    rank0, rank1 = (torch.load(out / f"rank{r}.pt", map_location="cpu", weights_only=True) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "DDP must keep the ranks' weights identical"


# --- the helpers, in one process -------------------------------------------------------------------


def test_single_process_defaults(monkeypatch):
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert D.rank() == 0 and D.world_size() == 1 and D.is_main_process() and not D.is_distributed()
    assert choose_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert D.broadcast_from_main(lambda: "x") == "x"
    assert D.main_process_first(lambda: 3) == 3
    assert D.rank_seed(5) == 5 and D.rank_seed(None) is None
    module = nn.Linear(2, 2)
    assert D.ddp_wrap(module, "cpu") is module  # no process group: not wrapped
    assert D.unwrap(module) is module


def test_non_main_ranks_attach_no_writing_or_logging_handler(monkeypatch, tmp_path):
    from ignite.handlers import ProgressBar
    from monai.handlers import CheckpointSaver, StatsHandler, ValidationHandler

    from medseg_masksup.training.report import TrainingReport

    validation = ValidationHandler(interval=1)
    stats = StatsHandler()
    saver = CheckpointSaver(save_dir=str(tmp_path), save_dict={"m": nn.Linear(1, 1)})
    bar = ProgressBar()
    report = TrainingReport.__new__(TrainingReport)  # no need to build one: its type decides
    handlers = [validation, None, stats, saver, bar, report]
    monkeypatch.setenv("RANK", "0")
    assert D.active_handlers(handlers) == [validation, stats, saver, bar, report]
    monkeypatch.setenv("RANK", "1")
    assert not D.is_main_process()
    assert D.active_handlers(handlers) == [validation]
    assert D.rank_seed(5) == 6
    assert D.broadcast_from_main(lambda: "x") == "x"  # no process group: plain call


def test_reseed_masker_per_rank(monkeypatch):
    from medseg_masksup import MaskGenerator

    monkeypatch.setenv("RANK", "1")
    masker = D.reseed_masker(MaskGenerator("patch", 0.5, seed=3), 3)
    assert masker.seed == 4
    assert D.reseed_masker(None, 3) is None
