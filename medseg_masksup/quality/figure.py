"""The risk–coverage figure: one curve per candidate score, with the oracle and chance drawn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_risk_coverage(table: dict[str, dict[str, Any]], dice: list[float], path: str | Path, title: str = "") -> Path:
    """Selective risk (1 − mean Dice of the kept cases) against coverage for each score in ``table``
    (:func:`~medseg_masksup.quality.risk_coverage.candidate_table`), the oracle (ranking by the true Dice,
    dashed) and chance (the mean risk, dotted); the legend gives each AURC. Written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.atomic import atomic_target
    from .risk_coverage import aurc, selective_risks

    dice_arr = np.asarray(dice, dtype=float)
    risk = 1.0 - dice_arr
    coverage = np.arange(1, dice_arr.size + 1) / dice_arr.size
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for name, row in table.items():
        ax.plot(row["coverage"], row["selective_risk"], label=f"{name} (AURC {row['aurc']:.4f})", linewidth=1.6)
    ax.plot(coverage, selective_risks(dice_arr, risk), "k--", linewidth=1.2, label=f"oracle (AURC {aurc(dice_arr, risk):.4f})")
    ax.axhline(float(risk.mean()), color="grey", linestyle=":", linewidth=1.2, label=f"chance (AURC {risk.mean():.4f})")
    ax.set_xlabel("coverage (share of cases kept, most trusted first)")
    ax.set_ylabel("selective risk (1 − mean Dice of kept cases)")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"Risk–coverage over {dice_arr.size} cases (lower is better)")
    fig.tight_layout()
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)
