"""A training killed before its first checkpoint: the next start closes its MLflow run (KILLED) and removes the
empty run folder it left; Ctrl-C before the first checkpoint closes its own run and folder and offers no resume."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import mlflow

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.training.run_claim import LOCK_NAME
from medseg_masksup.tracking.store import sqlite_uri

# a first epoch of minutes (samples_per_epoch), so a kill lands before the first checkpoint
ARGS = ["--img_size", "[32,32]", "--synthetic_cases", "12", "--synthetic_size", "32", "--batch_size", "2",
        "--samples_per_epoch", "20000", "--epochs", "2"]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
                             "--output_dir", str(out), *ARGS], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def _running_ids(out: Path) -> set[str]:
    try:
        with sqlite3.connect(out / "mlflow.db", timeout=30) as con:
            return {row[0] for row in con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")}
    except sqlite3.Error:  # not created yet
        return set()


def _wait_for_new_running_run(proc: subprocess.Popen, out: Path, known: set[str], timeout: float = 600) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        new = _running_ids(out) - known
        if new:
            return new.pop()
        time.sleep(0.1)
    raise AssertionError(f"no MLflow run started (exit {proc.poll()}): {proc.stderr.read()[-3000:] if proc.poll() else ''}")


def _folder_of(out: Path, run_id: str) -> Path:
    run = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db"))).get_run(run_id)
    return Path(run.data.tags["medseg_masksup.run_dir"])


def _dead_empty_claim(folder: Path) -> None:
    """What a training killed while loading its data leaves: a claimed, empty run folder whose holder is dead."""
    folder.mkdir(parents=True)
    code = "import os, sys; from medseg_masksup.training.run_claim import claim; claim(sys.argv[1]); os.kill(os.getpid(), 9)"
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, timeout=300)
    assert [p.name for p in folder.iterdir()] == [LOCK_NAME]


@pytest.mark.integration
def test_the_next_start_closes_a_dead_run_and_removes_empty_folders_and_ctrl_c_cleans_up_its_own(tmp_path):
    out = tmp_path / "out"
    first = _start(out)
    dead_id = _wait_for_new_running_run(first, out, set())
    dead_folder = _folder_of(out, dead_id)
    first.send_signal(signal.SIGKILL)  # no handler runs: the run stays RUNNING, the folder stays behind
    first.wait(timeout=60)
    assert [p.name for p in dead_folder.iterdir()] == [LOCK_NAME]  # killed before its first checkpoint
    assert dead_id in _running_ids(out)
    loading = dead_folder.parent / "20000101-000000"
    _dead_empty_claim(loading)

    second = _start(out)
    live_id = _wait_for_new_running_run(second, out, {dead_id})
    live_folder = _folder_of(out, live_id)
    assert dead_id not in _running_ids(out) and not dead_folder.exists() and not loading.exists()
    second.send_signal(signal.SIGINT)
    stderr = second.communicate(timeout=300)[1]
    assert second.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith(("closed MLflow run", "removed", "interrupted"))]
    interrupted = re.sub(r"^interrupted at epoch [01] ", "interrupted at epoch N ", lines[-1])  # 0: before it began
    assert lines[:-1] + [interrupted] == [
        f"closed MLflow run {dead_id} (masksup) as KILLED: its training died without ending it; its empty run folder "
        f"{dead_folder} was removed",
        f"removed {loading}: an empty run folder left by a training that died before writing anything",
        f"interrupted at epoch N before its first checkpoint: nothing to resume (its empty run folder {live_folder} "
        "was removed)",
    ], stderr[-3000:]
    assert not live_folder.exists()
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    assert client.get_run(dead_id).info.status == "KILLED" and client.get_run(live_id).info.status == "KILLED"
    assert list(dead_folder.parent.iterdir()) == []
