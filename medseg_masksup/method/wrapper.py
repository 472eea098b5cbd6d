"""``MaskSup``: one backbone, two weight-sharing branches during training, the bare backbone at inference."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .masking import MaskGenerator


class MaskSupOutput(NamedTuple):
    """Training-mode output: clean logits, masked-branch logits (or ``None``) and the occlusion mask."""

    logits: torch.Tensor
    masked_logits: torch.Tensor | None
    mask: torch.Tensor | None


def primary_output(output) -> torch.Tensor:
    """The final segmentation logits of a MONAI net (BasicUNetPlusPlus returns a list, final first)."""
    return output[0] if isinstance(output, (list, tuple)) else output


class MaskSup(nn.Module):
    """Wrap any segmentation ``backbone`` for MaskSup training.

    - ``eval()`` mode: ``forward(x)`` *is* ``backbone(x)`` (no added cost at inference).
    - ``train()`` mode: ``forward(x)`` returns :class:`MaskSupOutput`; with a ``masker`` the batch and
      its occluded copy ``x ⊙ (1 - m)`` go through the same weights, either as two passes or as one
      concatenated batch (``concat=True``: faster on GPU at small batch, but BatchNorm then sees the
      statistics of both halves). Without a masker (the plain supervised baseline) only one pass runs.
    - ``masked_share`` < 1 masks only the first ``ceil(share * batch)`` images of each (shuffled) batch
      and runs the masked branch on those alone, so the masked pass costs that share of a clean one.

    The backbone's own parameters are the only ones: ``module.backbone.state_dict()`` loads into a
    bare backbone, which is what checkpoints store.
    """

    def __init__(self, backbone: nn.Module, masker: MaskGenerator | None = None, concat: bool = False,
                 masked_share: float = 1.0) -> None:
        super().__init__()
        if not 0 < masked_share <= 1:
            raise ValueError(f"masked_share must be in (0, 1], got {masked_share!r}")
        self.backbone = backbone
        self.masker = masker
        self.concat = concat
        self.masked_share = float(masked_share)
        #: ``False`` skips the masked branch (a plain supervised step), e.g. in MaskSup's clean final epochs
        self.masked_active = True

    def masked_count(self, batch: int) -> int:
        """How many images of a batch of ``batch`` go through the masked branch (at least one)."""
        return max(1, math.ceil(self.masked_share * batch - 1e-9))

    def forward(self, x: torch.Tensor):
        if not self.training:
            return self.backbone(x)
        if self.masker is None or not self.masked_active:
            return MaskSupOutput(primary_output(self.backbone(x)), None, None)
        masked_x, mask = self.masker.apply(x[: self.masked_count(x.shape[0])])
        if self.concat:
            both = primary_output(self.backbone(torch.cat([x, masked_x], dim=0)))
            logits, masked_logits = both[: x.shape[0]], both[x.shape[0]:]
        else:
            logits = primary_output(self.backbone(x))
            masked_logits = primary_output(self.backbone(masked_x))
        return MaskSupOutput(logits, masked_logits, mask)
