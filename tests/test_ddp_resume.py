"""Resume under torchrun: rank 0 wrote last.pt; every rank restores it; the MLflow run continues."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import mlflow
import torch

from conftest import REPO
from medseg_masksup.data.synthetic import ensure_synthetic_dataset

TRAIN = REPO / "bundles" / "masksup" / "train.json"
MULTI = REPO / "bundles" / "masksup" / "multi_gpu_train.json"


def _torchrun(tmp_path, out, datalist, *extra):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "monai.bundle", "run", "training", "--config_file", f"['{TRAIN}','{MULTI}']",
           "--output_dir", str(out), "--datalist", str(datalist), "--img_size", "[32,32]", "--batch_size", "2", *extra]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


@pytest.mark.integration
def test_torchrun_resume_restores_every_rank_and_continues_the_run(tmp_path):
    datalist = ensure_synthetic_dataset(tmp_path / "data", n_cases=10, size=32)
    out = tmp_path / "out"
    _torchrun(tmp_path, out, datalist, "--epochs", "1")
    (run_dir,) = [p for p in (out / "synthetic-glands" / "masksup").iterdir() if p.is_dir()]
    (run_dir / "summary.json").unlink()  # as if the first run had crashed after its epoch 1
    log = _torchrun(tmp_path, out, datalist, "--epochs", "2", "--resume", str(run_dir))
    assert log.count(f"resumed {run_dir} after epoch 1") == 2, log[-3000:]  # both ranks restored
    assert torch.load(run_dir / "last.pt", weights_only=True)["trainer"]["epoch"] == 2
    client = mlflow.MlflowClient("sqlite:///" + str(out / "mlflow.db"))
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_dice")] == [1, 2]
    assert run.info.status == "FINISHED"
