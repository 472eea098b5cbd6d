"""What ``inference.json`` and ``evaluate.json`` declare, readable before a run's paths are given.

MONAI's typed-workflow check (``ConfigWorkflow(config_file=…, workflow_type="infer").check_properties()``,
which MONAI Label and MONAI Deploy rely on) builds every required property (``dataset``, ``network_def``,
``inferer``, ``evaluator`` …) of a bundle whose ``--input``, ``--ckpt`` and ``--datalist`` are still empty.
So nothing here reads a user path when it is built:

- the training record is the checkpoint's, or the bundle default (:class:`TrainingRecord`, the network
  ``metadata.json`` describes) while no checkpoint is given;
- the predictor is :meth:`Predictor.from_checkpoint`'s (as ``infer`` and ``evaluate`` build it), or the untrained
  ``network_def`` with the default record while no checkpoint is given;
- the cases (:class:`Cases`) are found when first used.

A run checks its inputs before anything else (``inference.json``'s ``run`` starts with ``check_run``;
``evaluate_checkpoint`` refuses an empty ``--ckpt`` / ``--datalist``), so a default never reaches a real run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from ..record import TrainingRecord
from .options import InferenceOptions
from .predictor import Predictor

Checkpoint = str | os.PathLike | Sequence[str | os.PathLike] | None


def given(ckpt: Checkpoint) -> bool:
    """Whether a checkpoint (a path, or a non-empty list of them) was given."""
    if isinstance(ckpt, (list, tuple)):
        return len(ckpt) > 0
    return bool(str(ckpt or ""))


def _first(ckpt: Checkpoint) -> str | os.PathLike:
    return ckpt[0] if isinstance(ckpt, (list, tuple)) else ckpt  # type: ignore[return-value]


def record_of(ckpt: Checkpoint) -> TrainingRecord:
    """The (first) checkpoint's training record; the bundle default while no checkpoint is given."""
    from ..checkpoint import read_checkpoint

    return read_checkpoint(_first(ckpt))[1] if given(ckpt) else TrainingRecord()


def predictor_of(ckpt: Checkpoint, options: InferenceOptions, device: str | torch.device, untrained: nn.Module
                 ) -> Predictor:
    """The predictor ``infer`` / ``evaluate`` build (:meth:`Predictor.from_checkpoint`: one checkpoint, or several as
    an ensemble); while no checkpoint is given, the untrained ``network_def`` with the bundle's default record."""
    if given(ckpt):
        return Predictor.from_checkpoint(ckpt, options, device)  # type: ignore[arg-type]
    return Predictor(untrained, TrainingRecord(), options, device)


def checkpoint_name(ckpt: Checkpoint) -> str | list[str]:
    """The resolved checkpoint file(s) recorded in summaries; ``""`` while none is given."""
    from ..checkpoint import checkpoint_names

    return checkpoint_names(ckpt) if given(ckpt) else ""  # type: ignore[arg-type]


def labelled_items(datalist: str | os.PathLike, split: str, record: TrainingRecord) -> list[dict]:
    """The datalist items ``evaluate`` scores (``split`` as there; ``heldout`` is the record's validation fold)."""
    from ..data.datalist import load_items

    return load_items(datalist, split, record.val_fold)[0]


class Cases(Dataset):
    """The list ``find(*args)`` returns, made on first use (length, index or iteration) and kept."""

    def __init__(self, find: Callable[..., Sequence[Any]], *args: Any) -> None:
        self._find, self._args = find, args
        self._items: Sequence[Any] | None = None

    @property
    def items(self) -> Sequence[Any]:
        if self._items is None:
            self._items = list(self._find(*self._args))
        return self._items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)
