"""A disk that fills up during training: one line naming the file (no traceback), what was written before intact,
and a resume that finishes the run once there is space again. The disk is filled by ``disk_full_harness``
(files opened for writing under the run folders after the first few go to ``/dev/full``: the real ENOSPC)."""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import torch

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.checkpoint import save_checkpoint
from medseg_masksup.training.disk_full import disk_full_error, disk_full_message, written_file
from medseg_masksup.tracking.store import sqlite_uri

ARGS = ["--img_size", "[32,32]", "--synthetic_cases", "12", "--synthetic_size", "32", "--batch_size", "2"]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
HARNESS = Path(__file__).with_name("disk_full_harness.py")


def _train(out: Path, *extra: str, full_after: int | None = None) -> subprocess.CompletedProcess:
    bundle = ["monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG), "--output_dir", str(out), *ARGS, *extra]
    prefix = [str(HARNESS), str(out / "synthetic-glands"), str(full_after)] if full_after is not None else ["-m"]
    return subprocess.run([sys.executable, *prefix, *bundle], cwd=REPO, capture_output=True, text=True, env=ENV,
                          timeout=900)


def _one_error(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line.strip() for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0][errors[0].index("error:"):]


def _run_folder(out: Path) -> Path:
    (folder,) = (out / "synthetic-glands" / "masksup").iterdir()
    return folder


def _status(out: Path) -> list[str]:
    with sqlite3.connect(out / "mlflow.db") as con:
        return [row[0] for row in con.execute("SELECT status FROM runs")]


@pytest.mark.integration
def test_a_full_disk_at_a_checkpoint_is_one_line_and_the_last_checkpoint_survives(tmp_path):
    out = tmp_path / "out"
    proc = _train(out, "--epochs", "3", full_after=2)  # epoch 1's model.pt and last.pt fit, then the disk is full
    assert proc.returncode == 1, proc.stderr[-3000:]
    run = _run_folder(out)
    message = _one_error(proc)
    assert re.fullmatch(
        rf"error: disk full: no space left on the device to write {re.escape(str(run))}/(model|last)\.pt; "
        rf"{re.escape(str(run / 'last.pt'))} \(the last complete checkpoint\) is intact; free some space, then resume "
        rf"with: python -m monai\.bundle .* --resume {re.escape(str(run))}", message), message
    assert torch.load(run / "last.pt", weights_only=True)["trainer"]["epoch"] == 1
    assert torch.load(run / "model.pt", weights_only=True)["epoch"] == 1
    assert sorted(p.name for p in run.iterdir()) == ["last.pt", "model.pt"]  # no temporary file, no lock left
    assert _status(out) == ["FAILED"]


@pytest.mark.integration
def test_a_full_disk_while_writing_the_report_names_the_file_and_resume_finishes_the_run(tmp_path):
    out = tmp_path / "out"
    proc = _train(out, "--epochs", "1", full_after=2)  # both checkpoints fit, the report's first figure does not
    assert proc.returncode == 1, proc.stderr[-3000:]
    run = _run_folder(out)
    message = _one_error(proc)
    assert message.startswith(f"error: disk full: no space left on the device to write {run}/figures/learning_curves.png; "
                              f"{run / 'last.pt'} (the last complete checkpoint) is intact"), message
    assert not list(run.rglob(".*.tmp*"))

    resumed = _train(out, "--epochs", "1", "--resume", str(run))  # space again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "summary.json").is_file() and (run / "figures" / "learning_curves.png").is_file()
    (only,) = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db"))).search_runs(["1"])
    assert only.info.status == "FINISHED"


def test_save_checkpoint_names_its_target_when_the_disk_is_full(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    save_checkpoint({"a": torch.zeros(2)}, target)

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as err:
        save_checkpoint({"a": torch.ones(2)}, target)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert torch.load(target, weights_only=True)["a"].sum() == 0  # the earlier file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # its temporary file removed


def test_the_file_named_comes_from_the_write_under_way_the_error_or_the_store(tmp_path):
    copy_failed = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    copy_failed.filename, copy_failed.filename2 = "/src/model.pt", "/store/mlruns/1/model.pt"  # as shutil.copy sets them
    assert written_file(copy_failed, tmp_path) == "/store/mlruns/1/model.pt"
    assert written_file(copy_failed, tmp_path, pending=tmp_path / "summary.json") == str(tmp_path / "summary.json")
    wrapped = ValueError("MlflowException")  # how MLflow wraps SQLAlchemy's error of a full SQLite store
    wrapped.__cause__ = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    assert disk_full_error(wrapped) is wrapped.__cause__
    assert written_file(wrapped, tmp_path, store="/runs/mlflow.db") == "the MLflow store /runs/mlflow.db"
    assert disk_full_message(wrapped, tmp_path / "gone", "python -m …").endswith(
        "no epoch was checkpointed; free some space and start again")
    assert disk_full_error(OSError(errno.EDQUOT, "quota")) is not None
    assert disk_full_error(OSError(errno.EACCES, "denied")) is None
