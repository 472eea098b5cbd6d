"""Crash-safe checkpoints: ``last.pt`` every epoch, ``model.pt`` on each new best, and resuming from them.

Both files are written atomically (temporary file, fsync, rename), so a crash at any moment leaves the
previous version intact. ``last.pt`` holds everything needed to continue: weights, optimizer, AMP
scaler, epoch/iteration, RNG states (torch, CUDA, numpy, python, the mask generator), the validator's
best score and the MLflow run id. With an EMA of the weights (``ema_decay``), ``model`` in both files is
the averaged backbone (what validation scored and inference loads) and ``last.pt`` adds the raw weights
(``raw_model``) and the EMA's counter (``ema``) to continue from. Everything is plain tensors and Python types, so it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import min_version, optional_import

from ..checkpoint import BEST, LAST, CheckpointError, load_checkpoint, save_checkpoint
from .distributed import is_main_process, rank_seed
from .ema import WeightEMA
from .run_claim import in_use
from ..record import TrainingRecord

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

#: record fields that must agree between a run and the run that resumes it
RESUME_MUST_MATCH = ("network", "network_size", "in_channels", "out_channels", "img_size", "spatial_mode", "scale",
                     "bit_depth", "method", "mask_kind",
                     "dataset_fingerprint")


def numpy_state_values(state: tuple) -> list:
    """A NumPy ``RandomState.get_state()`` tuple as weights-only-loadable values."""
    kind, keys, pos, has_gauss, gauss = state
    return [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]


def numpy_state_from_values(values: list) -> tuple:
    """The inverse of :func:`numpy_state_values`: a tuple for ``RandomState.set_state``."""
    kind, keys, pos, has_gauss, gauss = values
    return (kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss))


def rng_state() -> dict[str, Any]:
    """Global RNG states as weights-only-loadable values."""
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": numpy_state_values(np.random.get_state()),
        "python": [version, list(internal), gauss_next],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(numpy_state_from_values(state["numpy"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_resume_dir(resume: Any, output_dir: str, dataset: str, method: str) -> str:
    """Which run folder to continue: ``""``/``False`` none; ``True``/``"auto"`` the newest run of this dataset
    and method that holds a ``last.pt``, has not finished and is not being trained by a live process; otherwise
    a run folder (or its ``last.pt``)."""
    if resume in (None, "", False, "false", "False", "no"):
        return ""
    if resume in (True, "true", "True", "auto", "last", "yes"):
        base = Path(output_dir) / dataset / method
        candidates = sorted(p.parent for p in base.glob(f"*/{LAST}") if not (p.parent / "summary.json").exists()
                            and not (is_main_process() and in_use(p.parent)))  # rank 0 judges: the others would see its claim
        if not candidates:
            raise CheckpointError(f"--resume {resume}: no unfinished run with a {LAST} under {base}")
        return os.fspath(candidates[-1])
    path = Path(str(resume))
    run_dir = path.parent if path.name == LAST else path
    if not (run_dir / LAST).is_file():
        raise CheckpointError(f"--resume {resume}: {run_dir / LAST} does not exist")
    return os.fspath(run_dir)


def load_resume_state(resume_dir: str, record: TrainingRecord) -> dict[str, Any] | None:
    """Read ``<resume_dir>/last.pt`` and refuse it if it was made for another network, image size, method or data."""
    if not resume_dir:
        return None
    path = Path(resume_dir) / LAST
    state = load_checkpoint(path, required=("model", "optimizer", "trainer", "training_record"))
    saved = state["training_record"]
    wrong = [f"{k}: checkpoint {saved.get(k)!r} vs now {getattr(record, k)!r}" for k in RESUME_MUST_MATCH
             if k in saved and saved.get(k) != getattr(record, k)]
    if wrong:
        raise CheckpointError(f"cannot resume from {path}: it was trained with other settings ({'; '.join(wrong)})")
    return state


class TrainingCheckpoints:
    """Trainer handler: saves ``model.pt`` when validation finds a new best and ``last.pt`` after every
    epoch; with ``resume_state`` (from :func:`load_resume_state`) it restores all of it when training starts.
    Attach it on every rank under torchrun: rank 0 writes, every rank restores.

    ``stateful`` maps names to further objects with ``state_dict``/``load_state_dict`` to carry along
    (e.g. the training report's history). With ``ema``, its averaged backbone is what ``model`` holds.
    """

    def __init__(self, run_dir: str, network: torch.nn.Module, optimizer: torch.optim.Optimizer, validator,
                 record: TrainingRecord, masker=None, mlflow_handler=None, resume_state: dict | None = None,
                 stateful: dict[str, Any] | None = None, ema: WeightEMA | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.network = network
        self.optimizer = optimizer
        self.validator = validator
        self.record = record
        self.masker = masker
        self.mlflow = mlflow_handler
        self.resume_state = resume_state
        self.stateful = stateful or {}
        self.ema = ema

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.STARTED, self.restore)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save_last)
        self.validator.add_event_handler(Events.EPOCH_COMPLETED, self.save_best)

    def _sync_record(self) -> None:
        if self.mlflow is not None and self.mlflow.run_id:
            self.record.mlflow_run_id = self.mlflow.run_id

    def _model_weights(self) -> dict[str, torch.Tensor]:
        """The weights validation scored and inference gets: the EMA's when there is one."""
        return (self.ema.module if self.ema is not None else self.network).state_dict()

    def save_best(self, validator) -> None:
        """After validation: write ``model.pt`` if this epoch set a new best score (rank 0 only under torchrun)."""
        if validator.state.best_metric_epoch != validator.state.epoch or not is_main_process():
            return
        self._sync_record()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint({"model": self._model_weights(), "training_record": self.record.state_dict(),
                     "best_metric": float(validator.state.best_metric), "epoch": int(validator.state.epoch)},
                    self.run_dir / BEST)

    def save_last(self, engine) -> None:
        """End of epoch: write everything needed to continue into ``last.pt`` (rank 0 only under torchrun)."""
        if not is_main_process():
            return
        self._sync_record()
        state = {
            "model": self._model_weights(),
            "optimizer": self.optimizer.state_dict(),
            "trainer": {"epoch": int(engine.state.epoch), "epoch_length": int(engine.state.epoch_length)},
            "validator": {"best_metric": float(self.validator.state.best_metric),
                          "best_metric_epoch": int(self.validator.state.best_metric_epoch)},
            "rng": rng_state(),
            "training_record": self.record.state_dict(),
            "mlflow_run_id": self.record.mlflow_run_id,
            "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()},
        }
        if getattr(engine, "scaler", None) is not None:
            state["scaler"] = engine.scaler.state_dict()
        if self.masker is not None:
            state["masker"] = self.masker.get_state()
        if self.ema is not None:
            state["raw_model"] = self.network.state_dict()
            state["ema"] = self.ema.state_dict()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_checkpoint(state, self.run_dir / LAST)

    def restore(self, engine) -> None:
        """Training starts: load the resume state into the network, optimizer, engines and RNGs.

        Under torchrun every rank restores from rank 0's ``last.pt``; ranks other than 0 then restart
        their mask generator from a seed of their own, so ranks keep drawing different masks.
        """
        state = self.resume_state
        if state is None:
            return
        self.network.load_state_dict(state.get("raw_model", state["model"]))
        if self.ema is not None and "ema" in state:  # else the EMA starts afresh from the restored weights
            self.ema.load_state_dict(state["ema"], state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state and getattr(engine, "scaler", None) is not None:
            engine.scaler.load_state_dict(state["scaler"])
        done = state["trainer"]["epoch"]
        finished = (self.run_dir / "summary.json").exists()
        if done > engine.state.max_epochs or (done == engine.state.max_epochs and finished):
            raise CheckpointError(
                f"{self.run_dir / LAST} already finished {done} epochs; raise --epochs above {done} to train on"
            )
        engine.state.epoch = done
        engine.state.iteration = done * state["trainer"]["epoch_length"]
        self.validator.state.best_metric = state["validator"]["best_metric"]
        self.validator.state.best_metric_epoch = state["validator"]["best_metric_epoch"]
        set_rng_state(state["rng"])
        if self.masker is not None and "masker" in state:
            if is_main_process():
                self.masker.set_state(state["masker"])
            else:
                self.masker.reset(rank_seed(self.record.seed + 7919 * done))
        for name, obj in self.stateful.items():
            if name in state.get("stateful", {}):
                obj.load_state_dict(state["stateful"][name])
        if done == engine.state.max_epochs:  # stopped while finalising: the engine completes at once
            engine.logger.info(f"{self.run_dir}: all {done} epochs were done; finishing the run (report, MLflow model)")
        engine.logger.info(f"resumed {self.run_dir} after epoch {done} (best val score so far "
                           f"{self.validator.state.best_metric:.4f} at epoch {self.validator.state.best_metric_epoch})")
        self.resume_state = None
