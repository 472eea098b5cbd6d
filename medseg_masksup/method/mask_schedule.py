"""MaskSup's schedules over epochs: ``MaskRatioWarmup`` (the hidden share grows from 0 to its target over the
first epochs) and ``CleanFinalEpochs`` (the last epochs train the clean branch alone).

Issue 12 saw the masked branch slow early learning. With a warm-up the network first learns from
(almost) clean images, and the occlusion reaches the configured ratio after ``epochs`` epochs. The
ratio depends only on the epoch number, so a resumed run continues on the same schedule.
"""

from __future__ import annotations

from ignite.engine import Engine, Events

from .loss import MaskSupLoss
from .masking import MaskGenerator
from .wrapper import MaskSup


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


class CleanFinalEpochs:
    """Ignite handler: the last ``epochs`` of ``max_epochs`` train the clean branch alone.

    In those epochs the step is the plain supervised one (no masked forward, no masked or consistency
    term), so the clean objective has the last word and the step costs what the baseline's does. Which
    epochs are clean depends only on the epoch number, so a resumed run stays on schedule. No-op for
    ``epochs == 0`` or a network without a masker (the baseline).

    Args:
        network: the training :class:`~medseg_masksup.method.wrapper.MaskSup` itself (the bundle passes
            ``@masksup_network``; under torchrun only the trainer's copy is wrapped in DDP, around this same module).
        loss: the :class:`~medseg_masksup.method.loss.MaskSupLoss` of the trainer.
        epochs: how many final epochs are clean (0 = off).
        max_epochs: the run's length in epochs.
    """

    def __init__(self, network: MaskSup, loss: MaskSupLoss, epochs: int = 0, max_epochs: int = 0) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or not 0 <= epochs < max(max_epochs, 1):
            raise ValueError(f"clean final epochs must be an integer >= 0 and below the run's {max_epochs} epochs, got {epochs!r}")
        self.network, self.loss, self.epochs, self.max_epochs = network, loss, epochs, max_epochs

    def masked_at(self, epoch: int) -> bool:
        """Whether 1-based ``epoch`` runs the masked branch."""
        return epoch <= self.max_epochs - self.epochs

    def attach(self, engine: Engine) -> None:
        if self.epochs > 0 and self.network.masker is not None:
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        active = self.masked_at(engine.state.epoch)
        self.network.masked_active = active
        self.loss.masked_active = active
