"""A real training run killed with SIGKILL mid-training resumes: same MLflow run, no lost best, no duplicate steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import mlflow
import torch

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.tracking.store import sqlite_uri

ARGS = ["--epochs", "4", "--img_size", "[32,32]", "--synthetic_cases", "40", "--synthetic_size", "32", "--batch_size", "2"]


def _cmd(out, *extra):
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
            "--output_dir", str(out), *ARGS, *extra]


@pytest.mark.integration
def test_sigkill_then_resume_continues_the_same_run(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(_cmd(out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    last = None
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob("synthetic-glands/masksup/*/last.pt"))
        if found:
            last = found[0]
            break
        time.sleep(0.05)
    assert last is not None, f"no last.pt appeared; stderr: {proc.stderr.read().decode()[-2000:] if proc.poll() is not None else ''}"
    time.sleep(0.5)  # well into the next epoch (an epoch takes seconds)
    assert proc.poll() is None, "training ended before it could be killed; make the test run longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = last.parent
    before = torch.load(last, weights_only=True)
    done = before["trainer"]["epoch"]
    assert 1 <= done < 4
    best_before = torch.load(run_dir / "model.pt", weights_only=True)  # the best checkpoint survived the kill
    assert best_before["epoch"] <= done
    assert not (run_dir / "summary.json").exists()

    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    (crashed,) = client.search_runs([client.get_experiment_by_name("masksup-synthetic-glands").experiment_id])
    assert crashed.info.status == "RUNNING"  # SIGKILL leaves no chance to close it

    resumed = subprocess.run(_cmd(out, "--resume", "auto"), cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed {run_dir} after epoch {done}" in resumed.stdout + resumed.stderr

    runs = client.search_runs([client.get_experiment_by_name("masksup-synthetic-glands").experiment_id])
    assert [r.info.run_id for r in runs] == [crashed.info.run_id]  # the same MLflow run, no second one
    assert runs[0].info.status == "FINISHED"
    for key in ("train_loss", "val_dice", "val_iou"):
        steps = [m.step for m in client.get_metric_history(crashed.info.run_id, key)]
        assert sorted(steps) == [1, 2, 3, 4], (key, steps)  # continuous, no duplicate steps
    after = torch.load(run_dir / "last.pt", weights_only=True)
    assert after["trainer"]["epoch"] == 4
    assert [h["epoch"] for h in after["stateful"]["report"]["history"]] == [1, 2, 3, 4]
    best_after = torch.load(run_dir / "model.pt", weights_only=True)
    assert best_after["best_metric"] >= best_before["best_metric"]
    assert best_after["training_record"]["mlflow_run_id"] == crashed.info.run_id


@pytest.mark.integration
def test_resume_refuses_a_run_of_another_network(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    short = [a if a != "4" else "1" for a in ARGS]
    first = subprocess.run(_cmd(out)[:-len(ARGS)] + short + ["--synthetic_cases", "8"], cwd=REPO, capture_output=True,
                           text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    run_dir = next(out.glob("synthetic-glands/masksup/*"))
    proc = subprocess.run(_cmd(out, "--synthetic_cases", "8", "--network", "attentionunet", "--resume", str(run_dir)),
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode != 0
    assert f"cannot resume from {run_dir / 'last.pt'}: it was trained with other settings (network: checkpoint 'unet' vs now 'attentionunet')" in proc.stdout + proc.stderr
