"""The risk–coverage figure: one curve per candidate score, with the oracle and chance drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..io import figure_style as style


def plot_risk_coverage(table: dict[str, dict[str, Any]], dice: list[float], path: str | Path, title: str = "") -> Path:
    """Selective risk (1 − mean Dice of the kept cases) against coverage for each score in ``table``
    (:func:`~medseg_masksup.quality.risk_coverage.candidate_table`), the oracle (ranking by the true Dice,
    dashed) and chance (the mean risk, dotted); the legend gives each AURC. Written atomically as PNG."""
    from .risk_coverage import aurc, selective_risks

    dice_arr = np.asarray(dice, dtype=float)
    risk = 1.0 - dice_arr
    coverage = np.arange(1, dice_arr.size + 1) / dice_arr.size
    colours = style.series_colours(table)
    fig, ax = style.pyplot().subplots(figsize=(6, 4.2))
    for name, row in table.items():
        ax.plot(row["coverage"], row["selective_risk"], label=f"{name} (AURC {row['aurc']:.4f})", linewidth=1.6,
                color=colours[name])
    ax.plot(coverage, selective_risks(dice_arr, risk), color=style.ORACLE, linestyle="--", linewidth=1.2,
            label=f"oracle (AURC {aurc(dice_arr, risk):.4f})")
    ax.axhline(float(risk.mean()), color=style.REFERENCE, linestyle=":", linewidth=1.2, label=f"chance (AURC {risk.mean():.4f})")
    ax.set_xlabel("coverage (share of cases kept, most trusted first)")
    ax.set_ylabel("selective risk (1 − mean Dice of kept cases)")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=style.GRID_ALPHA)
    ax.legend(fontsize=style.FONT_SMALL)
    ax.set_title(title or f"Risk–coverage over {dice_arr.size} cases (lower is better)", fontsize=style.FONT_TITLE)
    fig.tight_layout()
    return style.save_figure(fig, path)
