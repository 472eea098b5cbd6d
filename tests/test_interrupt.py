"""Interrupted trainings: Ctrl-C gives one line and a KILLED, resumable run; a run killed while it was being
finalised resumes into a finished state."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import mlflow

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.training.interrupt import resume_command
from medseg_masksup.tracking.store import sqlite_uri

ARGS = ["--img_size", "[32,32]", "--synthetic_cases", "24", "--synthetic_size", "32", "--batch_size", "2"]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
            "--output_dir", str(out), *ARGS, *extra]


def _wait_for(proc: subprocess.Popen, pattern: str, out: Path, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = list(out.glob(pattern))
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"{pattern} never appeared (exit {proc.poll()})")


def _runs(out: Path) -> list:
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    return client.search_runs([client.get_experiment_by_name("masksup-synthetic-glands").experiment_id])


def test_resume_command_replaces_an_earlier_resume():
    argv = ["monai/bundle/__main__.py", "run", "training", "--resume", "auto", "--epochs", "3", "--resume=x"]
    assert resume_command("/r d", argv) == "python -m monai.bundle run training --epochs 3 --resume '/r d'"


@pytest.mark.integration
def test_ctrl_c_prints_one_line_marks_the_run_killed_and_resumes(tmp_path):
    """(SIGTERM takes the same path: tests/test_study_runner.py sends it to a study's training.)"""
    signum, status = signal.SIGINT, 130
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(out, "--epochs", "3"), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    last = _wait_for(proc, "synthetic-glands/masksup/*/last.pt", out)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "training ended before it could be interrupted; make the test run longer"
    proc.send_signal(signum)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted at epoch")]
    assert len(lines) == 1, stderr[-3000:]
    assert f"--resume {last.parent}" in lines[0]
    (run,) = _runs(out)
    assert run.info.status == "KILLED"

    command = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "monai.bundle"]
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (after,) = _runs(out)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert (last.parent / "summary.json").is_file()


@pytest.mark.integration
def test_a_run_killed_while_finalising_resumes_into_a_finished_run(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(out, "--epochs", "1"), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    curves = _wait_for(proc, "synthetic-glands/masksup/*/figures/learning_curves.png", out)
    assert proc.poll() is None, "training finished before it could be killed while finalising"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = curves.parent.parent
    assert not (run_dir / "summary.json").exists()
    (run,) = _runs(out)
    assert run.info.status == "RUNNING"

    resumed = subprocess.run(_cmd(out, "--epochs", "1", "--resume", "auto"), cwd=REPO, capture_output=True, text=True,
                             env=ENV, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "all 1 epochs were done; finishing the run" in resumed.stdout + resumed.stderr
    (after,) = _runs(out)
    assert after.info.run_id == run.info.run_id and after.info.status == "FINISHED"
    assert after.data.tags.get("mlflow_model")  # the model was logged
    assert (run_dir / "summary.json").is_file()
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    assert "checkpoints/model.pt" in [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")]
    again = subprocess.run(_cmd(out, "--epochs", "1", "--resume", str(run_dir)), cwd=REPO, capture_output=True,
                           text=True, env=ENV, timeout=600)
    assert again.returncode != 0 and "already finished 1 epochs" in again.stderr
