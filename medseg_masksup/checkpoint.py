"""The one home of checkpoint files and training run folders: saving atomically, loading safely, rebuilding
the network; what a run folder holds and finding its finished or unfinished runs.

A medseg-masksup checkpoint is a ``dict`` with ``model`` (the bare backbone's state dict) and
``training_record`` (:class:`~medseg_masksup.record.TrainingRecord` as a dict); ``last.pt`` adds the
optimizer/trainer state for resuming. Files are read with ``torch.load(weights_only=True)``: a file
holding pickled objects is refused, since loading it could run code. Every refusal is a
:class:`~medseg_masksup.errors.CheckpointError` whose one-line message names the file and the problem.

A training run folder (``<output_dir>/<dataset>/<method>/<timestamp>``) holds ``model.pt`` (:data:`BEST`, the
best epoch's), ``last.pt`` (:data:`LAST`, every epoch's, to resume from) and, once training has finished,
``summary.json`` (:data:`SUMMARY`, written last). The study runner, resuming and inference ask this module
(:func:`newest_finished_run`, :func:`newest_unfinished_run`, :func:`run_summary`) instead of globbing.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, error_chain
from .io.atomic import atomic_target
from .record import TrainingRecord

__all__ = [
    "CheckpointError", "save_checkpoint", "resolve_checkpoint", "load_checkpoint", "load_weights", "read_checkpoint",
    "load_network", "load_ensemble", "checkpoint_names", "network_from_checkpoint", "training_run_id", "REQUIRED_RECORD_KEYS",
    "BEST", "LAST", "SUMMARY", "is_finished_run", "is_unfinished_run", "training_runs", "newest_finished_run",
    "newest_unfinished_run", "run_summary",
]

#: the best epoch's checkpoint in a run folder (what inference loads from a run folder)
BEST = "model.pt"
#: the latest epoch's checkpoint, with the trainer state to resume from
LAST = "last.pt"
#: the run's summary (best validation Dice and epoch, MLflow run id), written last: the run has finished
SUMMARY = "summary.json"
#: training's run folders under its ``output_dir``: ``<dataset>/<method>/<timestamp>``
RUN_FOLDERS = "*/*/*"
#: record fields inference needs to rebuild the network and its preprocessing
REQUIRED_RECORD_KEYS = (
    "network", "network_size", "spatial_dims", "in_channels", "out_channels", "img_size",
    "intensity_range", "normalised_range", "prob_threshold",
)
#: record fields that must agree between the checkpoints of an ensemble (same input preparation)
ENSEMBLE_MUST_MATCH = ("spatial_dims", "in_channels", "out_channels", "img_size", "spatial_mode", "scale",
                       "intensity_range", "normalised_range", "label_threshold", "prob_threshold")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file beside ``path``, flushed to disk, then renamed over it.
    A failed write (a full disk) leaves ``path`` as it was and raises the ``OSError`` with ``path`` as its file name."""
    try:
        with atomic_target(path) as tmp, open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
    except (OSError, RuntimeError) as err:  # torch's C++ writer turns the OSError of a failed write into a RuntimeError
        cause = next((e for e in error_chain(err) if isinstance(e, OSError) and e.errno), None)
        if cause is None:
            raise
        raise OSError(cause.errno, os.strerror(cause.errno), os.fspath(path)) from err
    return Path(path)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint file: ``path`` itself, or ``<path>/model.pt`` for a training run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / BEST
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


#: how the two formats ``torch.save`` writes begin: a zip archive (since PyTorch 1.6) or a pickle (protocol 2+)
_ZIP_MAGIC, _PICKLE_PROTO = b"PK\x03\x04", 0x80


def _format_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file at all (neither a zip archive nor a pickle), else ``None``."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(_ZIP_MAGIC) or head[:1] == bytes([_PICKLE_PROTO]):
        return None
    return (f"not a checkpoint at all: neither a zip archive (what torch.save writes) nor a pickle file; "
            f"it begins with the bytes {head.hex(' ')}")


def _unreadable_reason(err: BaseException) -> str:
    text = _ANSI.sub("", str(err))
    reason = text.splitlines()[0].strip() if text.strip() else type(err).__name__
    if reason.startswith("Weights only load failed"):
        if "Unsupported global" in text:
            return ("it holds pickled Python objects, not only weights (e.g. a whole model object); "
                    "refused because loading it could run code")
        detail = next((line.strip() for line in text.splitlines()[1:] if line.strip() and "WeightsUnpickler" not in line
                       and not line.startswith(("Please", "Check", "\t", "(1)", "(2)"))), "")
        return "its pickled data is not a saved set of weights" + (f" ({detail})" if detail else "")
    if "inline_container" in reason:  # torch's zip reader: a zip archive, but not one torch.save wrote
        return "a zip archive, but not one torch.save wrote: " + reason.split("] . ", 1)[-1].strip(" .")
    if len(reason) > 160 and ". " in reason:  # torch appends paragraphs of advice
        return reason.split(". ", 1)[0] + "."
    return reason


def load_checkpoint(path: str | os.PathLike, required: Sequence[str] = ("model", "training_record"),
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` that refuses missing, corrupt, foreign or incomplete files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (the file is empty, 0 bytes)")
    problem = _format_problem(path)
    if problem:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({problem})")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the refusal below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means the file cannot be used
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_unreadable_reason(err)})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not a medseg-masksup checkpoint (it holds a {type(state).__name__})")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a medseg-masksup checkpoint: missing {', '.join(missing)}")
    return state


def load_weights(network: nn.Module, state_dict: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """``network.load_state_dict`` with a one-line explanation when the weights belong to another network."""
    try:
        network.load_state_dict(state_dict)
    except RuntimeError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        detail = lines[1] if len(lines) > 1 else lines[0]
        raise CheckpointError(
            f"checkpoint {source} does not fit {type(network).__name__} as configured "
            f"(other network, size or channels?): {detail[:300]}"
        ) from None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], TrainingRecord, Path]:
    """State dict of the bare backbone, its training record, and the resolved file (``path`` may be a run folder)."""
    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path, required=())
    if "model" not in ckpt:
        raise CheckpointError(
            f"{path}: no 'model' weights (found {sorted(map(str, ckpt))[:8]}); "
            "expected a checkpoint written by medseg-masksup training"
        )
    state = ckpt.get("training_record")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: no 'training_record'; the preprocessing the weights were trained with is unknown, "
            "so the checkpoint cannot be used (write checkpoints with medseg-masksup training)"
        )
    missing = [k for k in REQUIRED_RECORD_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: training record lacks {', '.join(missing)}; cannot rebuild the preprocessing")
    return ckpt["model"], TrainingRecord.from_dict(state), path


def load_network(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainingRecord]:
    """The bare 2D binary backbone (eval mode, weights loaded strictly) and the record it was trained with."""
    from .networks import build_network

    weights, record, path = read_checkpoint(path)
    if int(record.spatial_dims) != 2:
        raise CheckpointError(f"{path}: a {record.spatial_dims}D model; inference here runs 2D models (volumes slice by slice)")
    if int(record.out_channels) != 1:
        raise CheckpointError(f"{path}: {record.out_channels} output channels; binary segmentation needs 1")
    try:
        network = build_network(record.network, record.spatial_dims, record.in_channels, record.out_channels, record.network_size)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit a {record.network}/{record.network_size} network ({first})") from None
    return network.to(device).eval(), record


def load_ensemble(paths: str | os.PathLike | Sequence[str | os.PathLike], device: str | torch.device = "cpu"
                  ) -> tuple[list[nn.Module], TrainingRecord]:
    """The backbones of one or more checkpoints and the first one's record; refuses checkpoints whose
    records prepare images differently (an ensemble averages probabilities of identical inputs)."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise CheckpointError("no checkpoint given: pass --ckpt <model.pt or training run folder> [more ...]")
    networks, records = [], []
    for path in paths:
        network, record = load_network(path, device)
        networks.append(network)
        records.append(record)
    first = records[0].state_dict()
    for path, record in zip(paths[1:], records[1:]):
        other = record.state_dict()
        wrong = [f"{k} {other.get(k)!r} (first: {first.get(k)!r})" for k in ENSEMBLE_MUST_MATCH if other.get(k) != first.get(k)]
        if wrong:
            raise CheckpointError(f"{path}: cannot join an ensemble with {paths[0]}: other preprocessing ({'; '.join(wrong)})")
    return networks, records[0]


def checkpoint_names(ckpt: str | os.PathLike | Sequence[str | os.PathLike]) -> str | list[str]:
    """The resolved checkpoint file, or the list of them for an ensemble."""
    if isinstance(ckpt, (str, os.PathLike)):
        return str(resolve_checkpoint(ckpt))
    names = [str(resolve_checkpoint(c)) for c in ckpt]
    return names[0] if len(names) == 1 else names


def network_from_checkpoint(path: str | os.PathLike) -> nn.Module:
    """The backbone the checkpoint's record describes, weights loaded."""
    return load_network(path)[0]


def training_run_id(ckpt_path: str | os.PathLike, record: TrainingRecord) -> str:
    """MLflow run id of the training run: from the record, else from the run folder's files.

    Training saves the best checkpoint before the run ends, so the checkpoint's own record may not
    know the run id yet; ``training_record.json`` / ``summary.json`` beside it do.
    """
    if record.mlflow_run_id:
        return record.mlflow_run_id
    folder = Path(ckpt_path).parent if Path(ckpt_path).is_file() else Path(ckpt_path)
    for name in ("training_record.json", SUMMARY):
        try:
            value = json.loads((folder / name).read_text()).get("mlflow_run_id")
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return str(value)
    return ""


# ----------------------------------------------------------------------------- training run folders


def is_finished_run(run_dir: str | os.PathLike) -> bool:
    """Whether training finished in ``run_dir``: its :data:`SUMMARY` (written last) and :data:`BEST` are there."""
    return (Path(run_dir) / SUMMARY).is_file() and (Path(run_dir) / BEST).is_file()


def is_unfinished_run(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a training to resume: a :data:`LAST` checkpoint and no :data:`SUMMARY`."""
    return (Path(run_dir) / LAST).exists() and not (Path(run_dir) / SUMMARY).exists()


def training_runs(output_dir: str | os.PathLike) -> list[Path]:
    """The run folders training made under ``output_dir`` (``<dataset>/<method>/<timestamp>``), oldest first."""
    return sorted(p for p in Path(output_dir).glob(RUN_FOLDERS) if p.is_dir())


def newest_finished_run(output_dir: str | os.PathLike) -> Path | None:
    """The newest run folder under ``output_dir`` whose training finished (:func:`is_finished_run`), or ``None``."""
    return next((p for p in reversed(training_runs(output_dir)) if is_finished_run(p)), None)


def newest_unfinished_run(output_dir: str | os.PathLike) -> Path | None:
    """The newest run folder under ``output_dir`` with a training to resume (:func:`is_unfinished_run`), or ``None``."""
    return next((p for p in reversed(training_runs(output_dir)) if is_unfinished_run(p)), None)


def run_summary(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The :data:`SUMMARY` of a finished run (``best_val_dice``, ``best_epoch``, ``mlflow_run_id`` ...)."""
    path = Path(run_dir) / SUMMARY
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable run summary ({err})") from None
    if not isinstance(summary, dict):
        raise CheckpointError(f"{path}: not a run summary (it holds a {type(summary).__name__})")
    return summary
