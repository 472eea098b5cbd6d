"""The least-trusted cases of an evaluation beside their uncertainty maps: what a reviewer would be sent first.

``evaluate --uncertainty`` ranks its cases by the best candidate score (lowest AURC) and draws the ``n`` it trusts
least, one row each: the image with the ground truth and the prediction outlined, and the uncertainty map (binary
entropy of the mean probability over the plain prediction and the passes, 0–1 bit). The row's title says the
case's rank, true Dice, score and whether the review flag at ``coverage`` would send it to a person, so the figure
shows at a glance whether the flagged masks are the bad ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import figure_style as style
from .review import choose_threshold, needs_review
from .risk_coverage import confidence_of
from .settings import score_info


@dataclass
class DrawnCase:
    """One row of the figure: the image ``(H, W, 3)`` in 0–1, truth and prediction ``(H, W)``, the map ``(H, W)``."""

    name: str
    rgb: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    uncertainty: np.ndarray
    dice: float
    score: float
    rank: int
    flagged: bool


def least_trusted(rows: Sequence[dict[str, Any]], score: str, n: int) -> list[tuple[int, dict[str, Any]]]:
    """The ``n`` rows ``score`` trusts least, least trusted first, with their rank (1 = least trusted); ties keep
    the rows' order."""
    confidence = confidence_of([float(r[score]) for r in rows], score_info(score).higher_is_better)
    order = sorted(range(len(rows)), key=lambda i: (confidence[i], i))
    return [(rank, rows[i]) for rank, i in enumerate(order[: max(0, int(n))], start=1)]


def flagged_below(rows: Sequence[dict[str, Any]], score: str, coverage: float) -> Callable[[float], bool]:
    """Whether a score value would be flagged by the review threshold chosen on ``rows`` for ``coverage``
    (:func:`~medseg_masksup.quality.review.choose_threshold`, the rule ``--write_quality`` stores)."""
    threshold, _ = choose_threshold([float(r[score]) for r in rows], score, coverage)
    return lambda value: needs_review(score, threshold, value)


def plot_least_trusted(cases: Sequence[DrawnCase], score: str, coverage: float, path: str | Path) -> Path | None:
    """Draw ``cases`` (see the module doc) to ``path`` as PNG, atomically; ``None`` when there is none."""
    if not cases:
        return None
    plt = style.pyplot()
    fig, axes = plt.subplots(len(cases), 2, figsize=(8.4, 3.3 * len(cases)), squeeze=False)
    image = None
    for (ax_case, ax_map), case in zip(axes, cases):
        rgb = style.tint(style.tint(case.rgb, case.truth, style.TRUTH), case.pred, style.PREDICTION)
        verdict = "flagged for review" if case.flagged else "not flagged"
        style.draw_masks(ax_case, rgb, [(case.truth, style.TRUTH), (case.pred, style.PREDICTION)],
                         title=f"#{case.rank} least trusted: {case.name}\nDice {case.dice:.3f} · {score} "
                               f"{case.score:.3f} · {verdict}")
        image = ax_map.imshow(case.uncertainty, cmap=style.HEAT_MAP, vmin=0.0, vmax=1.0)
        ax_map.set_title("uncertainty (bits)", fontsize=style.FONT_LABEL)
        ax_map.axis("off")
    fig.colorbar(image, ax=axes[:, 1].tolist(), fraction=0.04, pad=0.02)
    fig.suptitle(f"The {len(cases)} cases {score} trusts least (review flag at {coverage:.0%} coverage)",
                 fontsize=style.FONT_TITLE)
    style.colour_key(fig, [style.TRUTH_KEY, style.PREDICTION_KEY])
    return style.save_figure(fig, path)

