"""The MaskSup variants of issue 21: consistency toward the clean prediction only, and masking a share of the batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medseg_masksup.method.loss import MaskSupLoss
from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.method.wrapper import MaskSup
from medseg_masksup.training.checks import check_settings

BASE = dict(method="masksup", network="unet", network_size="small", img_size=[64, 64], mask_kind="freeform",
            mask_ratio=[0.4, 0.6], alpha=1.0, beta=1.0, gamma=1.0, seg_loss="bce", epochs=2, batch_size=2, lr=1e-3)


def _consistency_grads(consistency: str) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(2, 1, 8, 8, requires_grad=True, generator=torch.Generator().manual_seed(0))
    masked = torch.randn(2, 1, 8, 8, requires_grad=True, generator=torch.Generator().manual_seed(1))
    loss = MaskSupLoss(alpha=0.0, beta=0.0, gamma=1.0, consistency=consistency)
    loss(logits, masked, torch.zeros(2, 1, 8, 8)).total.backward()
    return logits.grad, masked.grad


def test_to_clean_consistency_leaves_the_clean_branch_alone():
    clean_grad, masked_grad = _consistency_grads("to_clean")
    assert torch.count_nonzero(clean_grad) == 0 and torch.count_nonzero(masked_grad) > 0
    sym_clean, sym_masked = _consistency_grads("symmetric")
    assert torch.count_nonzero(sym_clean) > 0
    torch.testing.assert_close(masked_grad, sym_masked)  # same pull on the masked branch, same value


def test_unknown_consistency_is_refused():
    with pytest.raises(ValueError, match="unknown consistency 'both'; choose one of symmetric, to_clean"):
        MaskSupLoss(consistency="both")


class _Identity(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.calls.append(x.shape[0])
        return x[:, :1] * self.scale


@pytest.mark.parametrize("concat", [False, True])
def test_masked_share_runs_the_masked_branch_on_part_of_the_batch(concat):
    backbone = _Identity()
    net = MaskSup(backbone, MaskGenerator("freeform", 0.5, seed=0), concat=concat, masked_share=0.5).train()
    out = net(torch.ones(8, 3, 16, 16))
    assert out.logits.shape[0] == 8 and out.masked_logits.shape[0] == 4 and out.mask.shape[0] == 4
    assert backbone.calls == ([12] if concat else [8, 4])
    parts = MaskSupLoss(seg_loss="bce")(out.logits, out.masked_logits, torch.ones(8, 1, 16, 16))
    assert torch.isfinite(parts.total)
    assert net.masked_count(1) == 1 and net.masked_count(3) == 2


def test_full_share_is_the_paper_step():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    full = MaskSup(_Identity(), MaskGenerator("freeform", 0.5, seed=3)).train()(x)
    default = MaskSup(_Identity(), MaskGenerator("freeform", 0.5, seed=3), masked_share=1.0).train()(x)
    torch.testing.assert_close(full.masked_logits, default.masked_logits)
    with pytest.raises(ValueError, match=r"masked_share must be in \(0, 1\], got 0"):
        MaskSup(_Identity(), None, masked_share=0)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"consistency": "both"}, "--consistency 'both' is not known; choose one of symmetric, to_clean"),
        ({"masked_share": 0}, "--masked_share must be a number in (0, 1] (1: the whole batch is masked), got 0"),
        ({"masked_share": 1.5}, "--masked_share must be a number in (0, 1] (1: the whole batch is masked), got 1.5"),
    ],
)
def test_variant_settings_are_checked(override, message):
    assert check_settings(**BASE) == []
    assert check_settings(**{**BASE, **override}) == [message]
