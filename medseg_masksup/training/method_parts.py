"""What each method (``baseline``, ``context``, ``masksup``) switches on: its loss weights, its loss and its masker."""

from __future__ import annotations

from collections.abc import Sequence

from ..method import METHODS
from ..method.loss import MaskSupLoss
from ..method.masking import MaskGenerator


def check_method(method: str) -> str:
    """``method``, or a ``ValueError`` naming the known methods."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def method_weights(method: str, alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    """Effective (α, β, γ): ``baseline`` zeroes β and γ, ``context`` zeroes γ, ``masksup`` keeps all."""
    check_method(method)
    if method == "baseline":
        return float(alpha), 0.0, 0.0
    if method == "context":
        return float(alpha), float(beta), 0.0
    return float(alpha), float(beta), float(gamma)


def method_loss(method: str, alpha: float, beta: float, gamma: float, seg_loss: str = "bce",
                consistency: str = "symmetric") -> MaskSupLoss:
    """The method's :class:`~medseg_masksup.method.loss.MaskSupLoss`, with the weights it switches on
    (:func:`method_weights`)."""
    alpha, beta, gamma = method_weights(method, alpha, beta, gamma)
    return MaskSupLoss(alpha=alpha, beta=beta, gamma=gamma, seg_loss=seg_loss, consistency=consistency)


def make_masker(method: str, kind: str, ratio: float | Sequence[float], seed: int) -> MaskGenerator | None:
    """The training masker, or ``None`` for the baseline (then no masked forward runs at all)."""
    return None if check_method(method) == "baseline" else MaskGenerator(kind, ratio, seed=seed)
