"""Failure detection by risk–coverage, as Zenk et al. (MedIA 2025) judge per-case quality scores.

Per case: a *confidence* (the score, negated where a higher score means less trust) and the *risk*
``1 − Dice``. Cases are kept from the most to the least confident; at coverage ``n / N`` the *selective risk* is
the mean risk of the ``n`` kept cases. AURC is the mean selective risk over ``n = 1 … N`` (the discrete area under
the risk–coverage curve; lower is better). Tied confidences are broken at random, in expectation: within a tie
the kept cases' risks are the tie's mean risk, so a constant score has AURC = *chance*, the mean risk (fd-shifts'
``random AURC``), whatever the order of the cases. The *oracle* ranks by the true Dice (fd-shifts' ``optimal
AURC``). ``gap_closed = (chance − AURC) / (chance − oracle)``: 1 for a perfect ranking, 0 for chance.
``worst_precision``: of the ``⌈10 %·N⌉`` least confident cases, the share that are among the ``⌈10 %·N⌉`` lowest
Dice (ties in expectation; chance ≈ 0.1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import UserError


def _tie_means(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``values`` with each group of equal ``keys`` replaced by the group's mean."""
    _, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    return (sums / np.bincount(inverse))[inverse]


def selective_risks(confidence: Sequence[float], risk: Sequence[float]) -> np.ndarray:
    """Selective risk at coverage ``1/N, 2/N … 1`` (most confident first; ties in expectation)."""
    confidence, risk = np.asarray(confidence, dtype=float), np.asarray(risk, dtype=float)
    if confidence.shape != risk.shape or confidence.ndim != 1 or confidence.size == 0:
        raise UserError(f"risk-coverage needs one confidence per case, got {confidence.size} confidences "
                        f"for {risk.size} cases")
    order = np.argsort(-confidence, kind="stable")
    risk_sorted = _tie_means(risk, confidence)[order]
    return np.cumsum(risk_sorted) / np.arange(1, risk.size + 1)


def aurc(confidence: Sequence[float], risk: Sequence[float]) -> float:
    """Area under the risk–coverage curve (mean selective risk; lower is better)."""
    return float(selective_risks(confidence, risk).mean())


def inclusion(values: Sequence[float], n: int) -> np.ndarray:
    """Probability that each case is among the ``n`` with the smallest ``values`` (ties broken at random)."""
    values = np.asarray(values, dtype=float)
    out = np.zeros(values.size)
    if n <= 0:
        return out
    cut = np.sort(values)[min(n, values.size) - 1]
    below, tied = values < cut, values == cut
    out[below] = 1.0
    out[tied] = (min(n, values.size) - below.sum()) / tied.sum()
    return out


def kept_dice(confidence: Sequence[float], dice: Sequence[float], coverage: float) -> float:
    """Mean Dice of the ``⌈coverage·N⌉`` most confident cases."""
    dice = np.asarray(dice, dtype=float)
    n = max(1, math.ceil(coverage * dice.size - 1e-9))
    return float(1.0 - selective_risks(confidence, 1.0 - dice)[n - 1])


def worst_precision(confidence: Sequence[float], dice: Sequence[float], share: float = 0.1) -> float:
    """Share of the ``⌈share·N⌉`` least confident cases that are among the ``⌈share·N⌉`` lowest Dice."""
    dice = np.asarray(dice, dtype=float)
    n = max(1, math.ceil(share * dice.size - 1e-9))
    flagged = inclusion(np.asarray(confidence, dtype=float), n)
    worst = inclusion(dice, n)
    return float((flagged * worst).sum() / n)


def spearman(confidence: Sequence[float], dice: Sequence[float]) -> float:
    """Spearman rank correlation of the confidence with Dice (NaN when either is constant)."""
    from scipy.stats import spearmanr

    confidence, dice = np.asarray(confidence, dtype=float), np.asarray(dice, dtype=float)
    if np.ptp(confidence) == 0 or np.ptp(dice) == 0:
        return math.nan
    return float(spearmanr(confidence, dice).statistic)


def confidence_of(values: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """The score as a confidence (higher = keep first)."""
    values = np.asarray(values, dtype=float)
    return values if higher_is_better else -values


def evaluate_score(values: Sequence[float], dice: Sequence[float], higher_is_better: bool) -> dict[str, Any]:
    """All the numbers of one candidate score (see the module doc): AURC, oracle, chance, gap closed, Spearman,
    kept Dice at 90 % and 80 % coverage, worst-10 % precision, and the curve (coverage, selective risk)."""
    dice = np.asarray(dice, dtype=float)
    if not np.isfinite(dice).all() or not np.isfinite(np.asarray(values, dtype=float)).all():
        raise UserError("risk-coverage needs a finite score and Dice for every case")
    confidence = confidence_of(values, higher_is_better)
    risk = 1.0 - dice
    value, oracle, chance = aurc(confidence, risk), aurc(dice, risk), float(risk.mean())
    return {
        "n": int(dice.size), "aurc": value, "oracle": oracle, "chance": chance,
        "gap_closed": (chance - value) / (chance - oracle) if chance - oracle > 1e-12 else math.nan,
        "spearman": spearman(confidence, dice),
        "kept_dice_90": kept_dice(confidence, dice, 0.9), "kept_dice_80": kept_dice(confidence, dice, 0.8),
        "worst_precision": worst_precision(confidence, dice),
        "coverage": (np.arange(1, dice.size + 1) / dice.size).tolist(),
        "selective_risk": selective_risks(confidence, risk).tolist(),
    }


def candidate_table(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_score` for each score column ``names`` of per-case ``rows`` (which hold ``dice``)."""
    from .settings import score_info

    dice = [float(r["dice"]) for r in rows]
    return {name: evaluate_score([float(r[name]) for r in rows], dice, score_info(name).higher_is_better)
            for name in names}


def best_score(table: dict[str, dict[str, Any]]) -> str:
    """The candidate with the lowest AURC (the first listed on a tie)."""
    return min(table, key=lambda name: table[name]["aurc"])


TABLE_FIELDS = ("aurc", "oracle", "chance", "gap_closed", "spearman", "kept_dice_90", "kept_dice_80", "worst_precision")


def table_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    """The candidate table as aligned text lines (no curves)."""
    head = f"  {'score':<15} {'AURC':>7} {'oracle':>7} {'chance':>7} {'gap':>6} {'Spearman':>9} {'Dice@90%':>9} " \
           f"{'Dice@80%':>9} {'worst10%':>9}"
    out = [head]
    for name, r in table.items():
        out.append(f"  {name:<15} {r['aurc']:>7.4f} {r['oracle']:>7.4f} {r['chance']:>7.4f} {r['gap_closed']:>6.2f} "
                   f"{r['spearman']:>9.3f} {r['kept_dice_90']:>9.4f} {r['kept_dice_80']:>9.4f} {r['worst_precision']:>9.2f}")
    return out
