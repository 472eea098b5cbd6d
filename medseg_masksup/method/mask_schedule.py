"""``MaskRatioWarmup``: MaskSup's hidden share grows from 0 to its target over the first epochs.

Issue 12 saw the masked branch slow early learning. With a warm-up the network first learns from
(almost) clean images, and the occlusion reaches the configured ratio after ``epochs`` epochs. The
ratio depends only on the epoch number, so a resumed run continues on the same schedule.
"""

from __future__ import annotations

from ignite.engine import Engine, Events

from .masking import MaskGenerator


class MaskRatioWarmup:
    """Ignite handler: at each epoch start, set ``masker.ratio`` to ``target * (epoch - 1) / epochs``
    (the full target from epoch ``epochs + 1`` on). No-op for the baseline (no masker) or ``epochs == 0``.

    Args:
        masker: the training :class:`~medseg_masksup.method.masking.MaskGenerator` (``None`` for the baseline).
        epochs: warm-up length in epochs (0 = off).
    """

    def __init__(self, masker: MaskGenerator | None, epochs: int = 0) -> None:
        if not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"mask warm-up epochs must be an integer >= 0, got {epochs!r}")
        self.masker = masker
        self.epochs = epochs
        self.target = masker.ratio if masker is not None else (0.0, 0.0)

    def ratio_at(self, epoch: int) -> tuple[float, float]:
        """The ``(min, max)`` hidden share used in 1-based ``epoch``."""
        factor = 1.0 if self.epochs == 0 else min(1.0, max(0, epoch - 1) / self.epochs)
        return (self.target[0] * factor, self.target[1] * factor)

    def attach(self, engine: Engine) -> None:
        if self.masker is not None and self.epochs > 0:
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        self.masker.ratio = self.ratio_at(engine.state.epoch)
