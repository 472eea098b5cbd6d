import math

import pytest
import torch

from medseg_masksup.method.loss import MaskSupLoss


def _bce(logit: float, y: float) -> float:
    p = 1 / (1 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _sig(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_loss_equals_the_formula_on_hand_computed_values():
    logits = torch.tensor([[[[2.0, -1.0]]]])
    masked = torch.tensor([[[[0.5, 1.0]]]])
    target = torch.tensor([[[[1.0, 0.0]]]])
    alpha, beta, gamma = 0.7, 1.3, 2.0
    parts = MaskSupLoss(alpha, beta, gamma)(logits, masked, target)
    seg = (_bce(2.0, 1) + _bce(-1.0, 0)) / 2
    seg_m = (_bce(0.5, 1) + _bce(1.0, 0)) / 2
    cons = ((_sig(2.0) - _sig(0.5)) ** 2 + (_sig(-1.0) - _sig(1.0)) ** 2) / 2
    assert parts.seg.item() == pytest.approx(seg, rel=1e-6)
    assert parts.masked.item() == pytest.approx(seg_m, rel=1e-6)
    assert parts.consistency.item() == pytest.approx(cons, rel=1e-6)
    assert parts.total.item() == pytest.approx(alpha * seg + beta * seg_m + gamma * cons, rel=1e-6)


def test_baseline_needs_no_masked_branch_and_is_plain_bce():
    loss = MaskSupLoss(1.0, 0.0, 0.0)
    assert not loss.needs_masked_branch
    logits, target = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) > 0.5).float()
    parts = loss(logits, None, target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert torch.allclose(parts.total, expected)
    assert parts.masked.item() == 0 and parts.consistency.item() == 0


def test_context_only_skips_the_consistency_term():
    loss = MaskSupLoss(1.0, 1.0, 0.0)
    logits, masked = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    target = (torch.rand(2, 1, 4, 4) > 0.5).float()
    parts = loss(logits, masked, target)
    assert parts.consistency.item() == 0
    assert torch.allclose(parts.total, parts.seg + parts.masked)


def test_masked_logits_are_required_when_beta_or_gamma_is_set():
    with pytest.raises(ValueError, match="no masked-branch logits"):
        MaskSupLoss()(torch.zeros(1, 1, 2, 2), None, torch.zeros(1, 1, 2, 2))


def test_dicece_option_and_custom_callable():
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.5).float()
    parts = MaskSupLoss(seg_loss="dicece")(logits, logits.clone(), target)
    assert parts.consistency.item() == pytest.approx(0.0)
    assert torch.allclose(parts.seg, parts.masked)
    custom = MaskSupLoss(seg_loss=lambda p, y: (p - y).abs().mean())
    assert custom(logits, logits, target).seg.item() == pytest.approx((logits - target).abs().mean().item())


@pytest.mark.parametrize("kwargs, message", [({"beta": -1}, "beta must be >= 0"), ({"seg_loss": "focal"}, "unknown seg_loss 'focal'")])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MaskSupLoss(**kwargs)
