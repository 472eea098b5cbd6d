"""Exponential moving average (EMA) of the backbone's weights, updated after every optimizer step.

The averaging is torch's :class:`~torch.optim.swa_utils.AveragedModel` with
:func:`~torch.optim.swa_utils.get_ema_multi_avg_fn`; ``use_buffers=True`` averages the BatchNorm
statistics too, so the averaged backbone is complete on its own. With the bundle key ``ema_decay`` > 0
validation runs on the averaged backbone and checkpoints store it as ``model`` (what inference loads);
``last.pt`` keeps the raw weights beside it for resuming (see :mod:`.checkpoints`).
"""

from __future__ import annotations

import torch
from monai.utils import min_version, optional_import
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")


class WeightEMA:
    """Trainer handler: after every iteration, ``averaged`` moves towards ``network`` by ``1 - decay``
    (the first update copies). ``module`` is the averaged copy of ``network`` (same state-dict keys)."""

    def __init__(self, network: nn.Module, decay: float, device: str | torch.device | None = None) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"ema_decay must lie in (0, 1) for an EMA, got {decay!r}")
        self.network = network
        self.decay = float(decay)
        self.averaged = AveragedModel(network, device=device, multi_avg_fn=get_ema_multi_avg_fn(self.decay),
                                      use_buffers=True)

    @property
    def module(self) -> nn.Module:
        """The averaged backbone: validate it, save it, infer with it."""
        return self.averaged.module

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.update)

    def update(self, engine=None) -> None:
        self.averaged.update_parameters(self.network)

    def state_dict(self) -> dict[str, int]:
        """How many updates went in; the averaged weights themselves are the checkpoint's ``model``."""
        return {"n_averaged": int(self.averaged.n_averaged)}

    def load_state_dict(self, state: dict[str, int], weights: dict[str, torch.Tensor]) -> None:
        """Continue from a checkpoint: its averaged ``weights`` and :meth:`state_dict`."""
        self.module.load_state_dict(weights)
        self.averaged.n_averaged.fill_(int(state["n_averaged"]))


def build_ema(network: nn.Module, decay: float, device: str | torch.device | None = None) -> WeightEMA | None:
    """The EMA handler, or ``None`` when ``decay`` is 0 (off: training is exactly as without EMA)."""
    return WeightEMA(network, decay, device) if decay else None
