"""The one figure style: the colours, contours, colour keys, heat map and fonts of every figure and overlay.

Every module that draws (``io/overlay.py``, ``training/figures.py``, ``inference/robustness.py`` and
``worst_cases.py``, ``quality/figure.py`` and ``maps.py``, ``study/report.py``) takes its colours from here and
defines none of its own (``tests/test_figure_style.py`` checks it).

- **Masks**: ground truth cyan, prediction yellow, agreement (both) bluish green — a blue/yellow pair that stays
  apart for red–green colour blindness, and light hues that stand out from H&E (pink/purple), dermoscopy
  (skin/brown) and colonoscopy (red/pink). A mask is tinted and its contour drawn as a light line with a dark
  edge (:data:`OUTLINE`), so it reads on pale and on dark tissue alike.
- **Series** (arms, methods, scores, curves): the Okabe–Ito palette, one fixed colour per study arm
  (:data:`ARM_COLOURS`), the rest in :data:`PALETTE` order (:func:`series_colours`).
- **Heat maps**: ``inferno`` (perceptually uniform, readable in grey and for colour-blind readers).

Beside the constants, the pieces every matplotlib figure shares: :func:`pyplot` (Agg), :func:`tint`,
:func:`draw_masks` (tint and contour), :func:`colour_key` and :func:`save_figure` (atomic). matplotlib is
imported inside them, never at import time (start-up time, docs/architecture.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: an RGB colour, each channel in 0–1 (what matplotlib takes; :func:`rgb8` gives 0–255)
Colour = tuple[float, float, float]


def hex_colour(code: str) -> Colour:
    """``"#RRGGBB"`` → an RGB tuple in 0–1."""
    return tuple(int(code[i : i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]


def rgb8(colour: Colour) -> tuple[int, int, int]:
    """An RGB colour in 0–1 → 0–255 integers (PIL / numpy images)."""
    return tuple(int(round(255 * c)) for c in colour)  # type: ignore[return-value]


# --- masks on images -------------------------------------------------------------------------------------------
#: the ground truth (label): cyan
TRUTH: Colour = hex_colour("#00D8FF")
#: the model's prediction: Okabe–Ito yellow
PREDICTION: Colour = hex_colour("#F0E442")
#: where truth and prediction agree (blue + yellow): Okabe–Ito bluish green
AGREEMENT: Colour = hex_colour("#009E73")
#: the dark edge on both sides of every contour line, and the edge of the key's swatches
OUTLINE: Colour = (0.0, 0.0, 0.0)
#: the text and frame of a key drawn into a PNG overlay (on a darkened box)
KEY_TEXT: Colour = (1.0, 1.0, 1.0)
#: how strongly a mask tints the image under it (0 = not at all, 1 = solid colour)
FILL_ALPHA = 0.4
#: how much the box behind a PNG overlay's key darkens the image (its text stays readable on any picture)
KEY_SHADE = 0.7
#: contour line width in points (matplotlib), and the dark edge drawn under it
CONTOUR_WIDTH = 1.4
OUTLINE_WIDTH = 3.2
#: the key entries of a mask figure
TRUTH_KEY = ("ground truth", TRUTH)
PREDICTION_KEY = ("prediction", PREDICTION)
AGREEMENT_KEY = ("agreement", AGREEMENT)


def contour_px(height: int, width: int) -> int:
    """Width in pixels of the light contour line of a PNG overlay at its native size (2 px up to ~600 px)."""
    return max(2, round(min(height, width) / 300))


def key_font_px(height: int, width: int) -> int:
    """Text height in pixels of the key drawn into a PNG overlay: about 1/25 of the short side, 10–24 px."""
    return int(min(24, max(10, round(min(height, width) / 25))))


# --- series: arms, methods, scores ------------------------------------------------------------------------------
#: Okabe–Ito (colour-blind safe), in the order free series take them; yellow is left out (faint on white)
PALETTE: tuple[Colour, ...] = tuple(hex_colour(c) for c in (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#56B4E9",  # sky blue
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#000000",  # black
))
#: one colour per study arm (and method) in every figure: baseline grey, context blue, MaskSup vermillion
ARM_COLOURS: dict[str, Colour] = {
    "baseline": hex_colour("#999999"),
    "baseline-2x": hex_colour("#4D4D4D"),
    "context": PALETTE[0],
    "masksup": PALETTE[1],
}
#: reference lines: the oracle (black) and chance / a threshold floor (grey)
ORACLE: Colour = (0.0, 0.0, 0.0)
REFERENCE: Colour = hex_colour("#7F7F7F")


def series_colours(names: Iterable[str]) -> dict[str, Colour]:
    """A distinct colour for each name, in order: an arm or method (also as ``masksup/unet`` or
    ``masksup · freeform``) gets its :data:`ARM_COLOURS` colour the first time it appears, every other
    name the next :data:`PALETTE` colour that no name here holds (the palette repeats past its end)."""
    names = list(dict.fromkeys(names))
    fixed = {n: ARM_COLOURS.get(n, ARM_COLOURS.get(n.split("/")[0].split(" ")[0])) for n in names}
    out: dict[str, Colour] = {}
    for name in names:
        colour = fixed[name]
        if colour is None or colour in out.values():
            taken = set(out.values()) | {c for c in fixed.values() if c is not None}
            free = [c for c in PALETTE if c not in taken]
            colour = free[0] if free else PALETTE[len(out) % len(PALETTE)]
        out[name] = colour
    return out


# --- heat maps and text -----------------------------------------------------------------------------------------
#: the colour map of every heat map (uncertainty): black = 0, bright yellow = 1
HEAT_MAP = "inferno"
#: font sizes (points): the figure's title, a panel's title and axis labels, legends and small panels
FONT_TITLE = 11
FONT_LABEL = 10
FONT_SMALL = 8
#: resolution of every saved matplotlib figure
DPI = 120
#: faint grid lines, and the shade of a ± std band
GRID_ALPHA = 0.3
BAND_ALPHA = 0.12


# --- drawing with matplotlib (imported on first use) ------------------------------------------------------------
def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tint(rgb: np.ndarray, mask: np.ndarray, colour: Colour, alpha: float = FILL_ALPHA) -> np.ndarray:
    """``rgb`` ``(H, W, 3)`` floats in 0–1 with ``mask`` ``(H, W)`` tinted towards ``colour`` (a new array)."""
    out = np.array(rgb, dtype=np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, dtype=np.float32)
    return out


def agreement_tint(rgb: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``rgb`` tinted where only the truth is (:data:`TRUTH`), only the prediction (:data:`PREDICTION`) and
    both (:data:`AGREEMENT`)."""
    out = tint(rgb, truth & ~pred, TRUTH)
    out = tint(out, pred & ~truth, PREDICTION)
    return tint(out, truth & pred, AGREEMENT)


def draw_masks(ax: Any, rgb: np.ndarray, contours: Sequence[tuple[np.ndarray, Colour]], title: str = "") -> None:
    """Show ``rgb`` (already tinted, :func:`tint`) on ``ax`` with the contour of each ``(mask, colour)``: a light
    line on a dark edge, which reads on pale and dark tissue alike."""
    ax.imshow(rgb)
    for mask, colour in contours:
        mask = np.asarray(mask, dtype=bool)
        if mask.any() and not mask.all():
            for col, width in ((OUTLINE, OUTLINE_WIDTH), (colour, CONTOUR_WIDTH)):
                ax.contour(mask.astype(np.float32), levels=[0.5], colors=[col], linewidths=width)
    if title:
        ax.set_title(title, fontsize=FONT_LABEL)
    ax.axis("off")


def colour_key(fig: Any, entries: Sequence[tuple[str, Colour]]) -> None:
    """The colour key of a mask figure, under its panels: one swatch (with the contour's dark edge) per entry."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c, edgecolor=OUTLINE, linewidth=1.0, label=name) for name, c in entries]
    fig.legend(handles=handles, loc="lower center", ncol=len(entries), frameon=False, fontsize=FONT_LABEL,
               bbox_to_anchor=(0.5, -0.04))


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save ``fig`` as PNG atomically (:func:`~medseg_masksup.io.atomic.atomic_target`) and close it."""
    from .atomic import atomic_target

    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    finally:
        pyplot().close(fig)
    return Path(path)
