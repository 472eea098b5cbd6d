"""Loading checkpoints safely (``weights_only=True``) with errors that say what is wrong."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def load_checkpoint(path: str | os.PathLike, required: Sequence[str] = ("model", "training_record"),
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` that refuses missing, corrupt, foreign or incomplete files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to unpickle means the file cannot be used
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not a medseg-masksup checkpoint (it holds a {type(state).__name__})")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a medseg-masksup checkpoint: missing {', '.join(missing)}")
    return state


def load_weights(network: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
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
