"""The MaskSup objective: L = α·Seg(f(x), y) + β·Seg(f(x_m), y) + γ·MSE(σ(f(x)), σ(f(x_m)))."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from monai.losses import DiceCELoss
from torch import nn

SEG_LOSSES = ("bce", "dicece")
#: ``symmetric``: the paper's MSE pulls both branches toward each other; ``to_clean``: the clean
#: prediction is a fixed target (stop-gradient), so only the masked branch is pulled toward it
CONSISTENCY_TARGETS = ("symmetric", "to_clean")


class MaskSupLossParts(NamedTuple):
    """The total loss and its three terms (unweighted), as tensors."""

    total: torch.Tensor
    seg: torch.Tensor
    masked: torch.Tensor
    consistency: torch.Tensor


def make_seg_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``bce`` (the paper's, on logits) or ``dicece`` (MONAI's DiceCELoss, sigmoid)."""
    if name == "bce":
        return nn.BCEWithLogitsLoss()
    if name == "dicece":
        return DiceCELoss(sigmoid=True)
    raise ValueError(f"unknown seg_loss {name!r}; choose one of {', '.join(SEG_LOSSES)}")


class MaskSupLoss(nn.Module):
    """MaskSup loss on logits of the clean and the masked branch.

    ``beta = gamma = 0`` is plain supervised training, and then ``masked_logits`` may be ``None``
    (the trainer skips the masked forward); ``gamma = 0`` is the context branch without consistency.
    Paper defaults: BCE on logits, ``alpha = beta = gamma = 1``, ``consistency="symmetric"``.

    ``masked_logits`` may cover only the first ``k`` images of the batch (a masked share below 1, see
    :class:`~medseg_masksup.method.wrapper.MaskSup`): the masked and consistency terms then use those.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        gamma: float = 1.0,
        seg_loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "bce",
        consistency: str = "symmetric",
    ) -> None:
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if consistency not in CONSISTENCY_TARGETS:
            raise ValueError(f"unknown consistency {consistency!r}; choose one of {', '.join(CONSISTENCY_TARGETS)}")
        self.alpha, self.beta, self.gamma = float(alpha), float(beta), float(gamma)
        self.consistency = consistency
        #: ``False``: the masked branch is switched off for now (no masked logits expected), see ``CleanFinalEpochs``
        self.masked_active = True
        self.seg_loss = make_seg_loss(seg_loss) if isinstance(seg_loss, str) else seg_loss

    @property
    def needs_masked_branch(self) -> bool:
        """Whether the masked forward contributes anything now (``beta > 0`` or ``gamma > 0``, and not switched off)."""
        return self.masked_active and (self.beta > 0 or self.gamma > 0)

    def forward(
        self, logits: torch.Tensor, masked_logits: torch.Tensor | None, target: torch.Tensor
    ) -> MaskSupLossParts:
        target = target.to(logits.dtype)
        seg = self.seg_loss(logits, target)
        zero = seg.new_zeros(())
        if masked_logits is None:
            if self.needs_masked_branch:
                raise ValueError("beta or gamma > 0 but no masked-branch logits were given")
            return MaskSupLossParts(self.alpha * seg, seg, zero, zero)
        k = masked_logits.shape[0]
        masked = self.seg_loss(masked_logits, target[:k]) if self.beta > 0 else zero
        clean = logits[:k].detach() if self.consistency == "to_clean" else logits[:k]
        consistency = (
            nn.functional.mse_loss(torch.sigmoid(clean), torch.sigmoid(masked_logits)) if self.gamma > 0 else zero
        )
        total = self.alpha * seg + self.beta * masked + self.gamma * consistency
        return MaskSupLossParts(total, seg, masked, consistency)
