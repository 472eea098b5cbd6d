"""Statistics for comparing arms on the same cases: bootstrap confidence intervals and Wilcoxon's test."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 10_000


def bootstrap_ci(values: np.ndarray, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN for fewer than two values)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(samples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


@dataclass
class PairedDifference:
    """Mean per-case difference ``other - reference``, its bootstrap CI and Wilcoxon's two-sided p-value."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float
    wins: int
    losses: int


def paired_difference(other: np.ndarray, reference: np.ndarray, level: float = 0.95, seed: int = 0) -> PairedDifference:
    """Compare two arms on the same cases (arrays aligned case by case; pairs with a NaN are dropped)."""
    from scipy.stats import wilcoxon

    other, reference = np.asarray(other, dtype=float), np.asarray(reference, dtype=float)
    if other.shape != reference.shape:
        raise ValueError(f"paired arrays differ in shape: {other.shape} vs {reference.shape}")
    keep = np.isfinite(other) & np.isfinite(reference)
    diff = other[keep] - reference[keep]
    low, high = bootstrap_ci(diff, level=level, seed=seed)
    p = math.nan
    if diff.size >= 2 and np.any(diff != 0):
        p = float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)
    return PairedDifference(n=int(diff.size), mean=float(diff.mean()) if diff.size else math.nan, ci_low=low,
                            ci_high=high, p_wilcoxon=p, wins=int((diff > 0).sum()), losses=int((diff < 0).sum()))
