"""Running the trainer: ``trainer.run()`` with its MLflow run ended, interrupts and full disks told in one line,
and the run folders and MLflow runs of trainings that died tidied up first."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from ..checkpoint import LAST
from ..errors import CheckpointError
from ..io.atomic import watched_writes
from ..method.trainer import NonFiniteLossError
from ..tracking.run_handler import MLflowRunHandler
from ..tracking.store import sqlite_path
from .disk_full import PendingWrite, disk_full_error, disk_full_message
from .distributed import is_main_process
from .interrupt import Interrupted, exit_status, interrupt_on_signals, resume_command
from .run_claim import abandoned, release, remove_abandoned_empty_folders, remove_if_empty


def close_dead_trainings(mlflow_handler: MLflowRunHandler) -> list[str]:
    """Close as KILLED the experiment's MLflow runs left RUNNING by a training on this host that died (its run
    folder's claim is free, :mod:`.run_claim`), and remove a run folder such a training left empty; one line on
    stderr for each. Returns the ids of the runs closed."""
    closed = mlflow_handler.close_abandoned_runs(abandoned)
    for run in closed:
        if remove_if_empty(run.run_dir):
            left = f"its empty run folder {run.run_dir} was removed"
        elif (Path(run.run_dir) / LAST).is_file():
            left = f"resume it with --resume {run.run_dir}"
        else:
            left = f"its run folder {run.run_dir} holds no checkpoint to resume"
        print(f"closed MLflow run {run.run_id} ({run.run_name}) as KILLED: its training died without "
              f"ending it; {left}", file=sys.stderr, flush=True)
    return [run.run_id for run in closed]


def _tidy_up_after_dead_runs(mlflow_handler: MLflowRunHandler | None, run_dir: str) -> None:
    """Before a run starts: close the MLflow runs of trainings that died, remove the run folders they left empty,
    and tag the new run so a later start can do the same for it (rank 0 only under torchrun)."""
    if not is_main_process():
        return
    if mlflow_handler is not None:
        close_dead_trainings(mlflow_handler)
        mlflow_handler.trains_in(run_dir)
    for folder in remove_abandoned_empty_folders(Path(run_dir).parent):
        print(f"removed {folder}: an empty run folder left by a training that died before writing anything",
              file=sys.stderr, flush=True)


def _end_run(mlflow_handler: MLflowRunHandler | None, status: str) -> None:
    """Mark the MLflow run ``status``; a store that cannot be written (a full disk) does not hide the first error."""
    if mlflow_handler is not None:
        try:
            mlflow_handler.fail(status)
        except Exception:  # noqa: BLE001 - the error that ended training is what gets reported
            pass


def run_training(trainer, mlflow_handler: MLflowRunHandler | None = None, run_dir: str | None = None) -> None:
    """``trainer.run()``; on an error the MLflow run is marked FAILED, and a bad loss, bad data or a full disk ends
    the program with its one-line message instead of a stack trace. Ctrl-C or SIGTERM marks the run KILLED and ends
    the program (status 130 or 143) with one line: the epoch it stopped in and the command that resumes ``run_dir``.

    Before training, the runs of trainings that died (killed before they could end their MLflow run) are closed
    as KILLED and the run folders they left empty are removed; when training ends, ``run_dir``'s claim is given
    up, and the folder removed if the run wrote nothing into it (:mod:`.run_claim`)."""
    if run_dir:
        _tidy_up_after_dead_runs(mlflow_handler, run_dir)
    writing = PendingWrite()
    try:
        with interrupt_on_signals(quiet=True), watched_writes(writing):
            trainer.run()
    except KeyboardInterrupt as err:
        _end_run(mlflow_handler, "KILLED")
        removed = bool(run_dir) and release(run_dir)
        if not run_dir:
            where = ""
        elif (Path(run_dir) / LAST).is_file():
            where = f"; resume with: {resume_command(run_dir)}"
        else:
            where = (f" before its first checkpoint: nothing to resume"
                     + (f" (its empty run folder {run_dir} was removed)" if removed else f" in {run_dir}"))
        by = f" by {err.args[0]}" if isinstance(err, Interrupted) and err.signum != signal.SIGINT else ""
        print(f"\ninterrupted at epoch {trainer.state.epoch}{by}{where}", file=sys.stderr, flush=True)  # below the progress bar
        raise SystemExit(exit_status(err)) from None
    except BaseException as err:
        _end_run(mlflow_handler, "FAILED")
        if run_dir:
            release(run_dir)
        if run_dir and disk_full_error(err) is not None:
            store = sqlite_path(mlflow_handler.client.tracking_uri) if mlflow_handler is not None else None
            raise SystemExit(f"error: {disk_full_message(err, run_dir, resume_command(run_dir), store, writing.path)}") from None
        if isinstance(err, (NonFiniteLossError, CheckpointError)):
            raise SystemExit(f"error: {err}") from None
        raise
    if run_dir:
        release(run_dir)
