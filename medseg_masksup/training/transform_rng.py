"""The random transforms' own generators as checkpoint state, so that a resumed run augments exactly as the
uninterrupted run would have.

MONAI's random transforms each draw from a NumPy ``RandomState`` of their own (``transform.R``), seeded once
when the data loader is built. The global RNGs in ``last.pt`` do not cover them, so without this a resumed
run would restart every augmentation stream from its first epoch. :class:`TransformRandomState` is a
``stateful`` entry of :class:`~medseg_masksup.training.checkpoints.TrainingCheckpoints`.

It matters where the transforms run in the training process (``num_workers 0``, the CPU default); worker
processes are reseeded every epoch from the torch RNG, which ``last.pt`` restores already. Under torchrun
only rank 0 restores (the other ranks keep their own streams, as their masks do).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from monai.transforms import Randomizable, Transform

logger = logging.getLogger(__name__)

#: how deep into wrapped sub-transforms (RandAffined → RandAffine → RandAffineGrid …) to look
_MAX_DEPTH = 6


def randomizables(transform: Any) -> list[Randomizable]:
    """Every randomizable object in ``transform`` (a Compose tree, sub-transforms included), in a fixed order,
    each once."""
    found: dict[int, Randomizable] = {}
    for obj in _walk(transform, 0, set()):
        found.setdefault(id(obj), obj)
    return list(found.values())


def _walk(obj: Any, depth: int, seen: set[int]) -> Iterator[Randomizable]:
    if depth > _MAX_DEPTH or id(obj) in seen:
        return
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _walk(item, depth + 1, seen)
        return
    if not isinstance(obj, (Transform, Randomizable)):
        return
    seen.add(id(obj))
    if isinstance(obj, Randomizable):
        yield obj
    for value in vars(obj).values():
        yield from _walk(value, depth + 1, seen)


class TransformRandomState:
    """``state_dict`` / ``load_state_dict`` of the generators of every random transform in ``transform``."""

    def __init__(self, transform: Any) -> None:
        self.transforms = randomizables(transform)

    def state_dict(self) -> dict[str, list]:
        """Each generator's Mersenne-Twister state as weights-only-loadable values."""
        from .checkpoints import numpy_state_values

        return {"states": [numpy_state_values(t.R.get_state()) for t in self.transforms]}

    def load_state_dict(self, state: dict[str, list]) -> None:
        """Restore the generators (rank 0 only under torchrun); a checkpoint of another transform chain is
        skipped with a warning (the run then augments from fresh streams, as before this state existed)."""
        from .checkpoints import numpy_state_from_values
        from .distributed import is_main_process

        saved = state.get("states", [])
        if not is_main_process():
            return
        if len(saved) != len(self.transforms):
            logger.warning("last.pt holds %d random-transform states, this run has %d random transforms; "
                           "augmentation continues from fresh random streams", len(saved), len(self.transforms))
            return
        for t, values in zip(self.transforms, saved):
            t.R.set_state(numpy_state_from_values(values))
