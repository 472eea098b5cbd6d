"""Learning-rate schedules, stepped every iteration: linear warm-up, then constant, cosine or poly decay.

``cosine`` decays to 0 over the remaining steps (Loshchilov & Hutter); ``poly`` is nnU-Net's
``(1 - t/T) ** 0.9``. The schedule is a plain ``torch.optim.lr_scheduler.LambdaLR``, driven by MONAI's
``LrScheduleHandler(epoch_level=False)`` and saved in ``last.pt`` so a resumed run continues it.
"""

from __future__ import annotations

import math

import torch

LR_SCHEDULES = ("constant", "cosine", "poly")
POLY_EXPONENT = 0.9


class WarmupDecay:
    """Multiplier of the base learning rate at step ``t`` (picklable, unlike a lambda)."""

    def __init__(self, kind: str, warmup_steps: int, total_steps: int) -> None:
        if kind not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {kind!r}; choose one of {', '.join(LR_SCHEDULES)}")
        if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
            raise ValueError(f"need 0 <= warmup steps ({warmup_steps}) <= total steps ({total_steps}) and total >= 1")
        self.kind, self.warmup_steps, self.total_steps = kind, int(warmup_steps), int(total_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        if self.kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return (1.0 - progress) ** POLY_EXPONENT


class StepSchedule(torch.optim.lr_scheduler.LambdaLR):
    """``LambdaLR`` whose saved state is only the step count: the schedule itself comes from the settings,
    so resuming with a larger ``--epochs`` stretches the decay instead of restoring the old one."""

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("lr_lambdas", None)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict({**state_dict, "lr_lambdas": [None] * len(self.lr_lambdas)})


def build_lr_schedule(optimizer: torch.optim.Optimizer, kind: str, epochs: int, steps_per_epoch: int,
                      warmup_epochs: int = 0) -> StepSchedule:
    """A per-iteration ``LambdaLR`` over ``epochs * steps_per_epoch`` steps with ``warmup_epochs`` of warm-up."""
    total = max(1, int(epochs) * max(1, int(steps_per_epoch)))
    warmup = min(total, int(warmup_epochs) * max(1, int(steps_per_epoch)))
    return StepSchedule(optimizer, WarmupDecay(kind, warmup, total))
