"""Pictures people would rather look at than read: overlays and learning curves (matplotlib, Agg)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io.atomic import atomic_target  # noqa: E402


def to_display(image: np.ndarray, normalised_range: Sequence[float] = (-1.0, 1.0)) -> np.ndarray:
    """Channel-first image as MONAI reads a PNG (C, W, H), in ``normalised_range`` → (H, W, 3) floats in [0, 1]."""
    lo, hi = normalised_range
    img = np.clip((np.asarray(image, dtype=np.float32) - lo) / (hi - lo), 0, 1)
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return np.transpose(img[:3], (2, 1, 0))


def mask_to_display(mask: np.ndarray) -> np.ndarray:
    """(1, W, H) or (W, H) mask → (H, W) boolean, matching :func:`to_display`."""
    m = np.asarray(mask)
    return np.transpose(m[0] if m.ndim == 3 else m) > 0.5


def _tint(rgb: np.ndarray, mask: np.ndarray, colour: Sequence[float], alpha: float = 0.45) -> np.ndarray:
    out = rgb.copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour)
    return out


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save atomically (:func:`~medseg_masksup.io.atomic.atomic_target`) and close."""
    try:
        with atomic_target(path) as tmp:
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return Path(path)


TRUTH_COLOUR = (0.0, 1.0, 0.0)
PREDICTION_COLOUR = (1.0, 0.0, 0.0)


def colour_key(fig, extra: Sequence[tuple[str, Sequence[float]]] = ()) -> None:
    """The legend of the tints, under the panels: green = ground truth, red = prediction."""
    from matplotlib.patches import Patch

    entries = [("ground truth", TRUTH_COLOUR), ("prediction", PREDICTION_COLOUR), *extra]
    fig.legend(handles=[Patch(color=c, alpha=0.6, label=n) for n, c in entries], loc="lower center",
               ncol=len(entries), frameon=False, fontsize=9, bbox_to_anchor=(0.5, -0.04))


def overlay_panel(image, masked_image, label, pred, path, title: str = "", dice: float | None = None) -> Path:
    """One case: image | masked input | ground truth | prediction, with the colour key
    (green = truth, red = prediction)."""
    rgb = to_display(image)
    panels = [
        ("image", rgb),
        ("masked input (MaskSup branch)", to_display(masked_image) if masked_image is not None else rgb * 0),
        ("ground truth", _tint(rgb, mask_to_display(label), TRUTH_COLOUR)),
        ("prediction" + (f" (Dice {dice:.3f})" if dice is not None else ""), _tint(rgb, mask_to_display(pred), PREDICTION_COLOUR)),
    ]
    return panel_row(panels, path, title, height=3.6)


def panel_row(panels: Sequence[tuple[str, np.ndarray]], path, title: str = "", height: float = 3.8) -> Path:
    """Titled images in one row, with the colour key underneath, saved to ``path``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(13, height))
    for ax, (name, img) in zip(np.atleast_1d(axes), panels):
        ax.imshow(img)
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    colour_key(fig)
    return save_figure(fig, path)


def learning_curves(history: Sequence[Mapping[str, float]], path, title: str = "") -> Path:
    """Training losses (left) and validation metrics (right) per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("train_loss", "train_loss_seg", "train_loss_masked", "train_loss_consistency"):
        values = [h.get(key) for h in history]
        if any(v is not None and v != 0 for v in values):
            left.plot(epochs, [np.nan if v is None else v for v in values], label=key.replace("train_", ""))
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("training loss")
    left.legend()
    for key in ("val_dice", "val_iou"):
        values = [h.get(key, np.nan) for h in history]
        right.plot(epochs, values, marker="o", ms=3, label=key)
    baseline = next((h["threshold_baseline_dice"] for h in history if "threshold_baseline_dice" in h), None)
    if baseline is not None:
        right.axhline(baseline, color="grey", ls="--", label="Otsu threshold Dice")
    right.set_ylim(0, 1)
    right.set_xlabel("epoch")
    right.set_title("validation")
    right.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def case_overlay(image_rgb: np.ndarray, label: np.ndarray, pred: np.ndarray, path, title: str = "") -> Path:
    """One evaluated case at its native size: image | ground truth | prediction | both, with the colour key.

    ``image_rgb`` is ``(H, W, 3)`` uint8 or floats in [0, 1]; ``label`` and ``pred`` are ``(H, W)`` masks.
    """
    rgb = np.asarray(image_rgb, dtype=np.float32)
    rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
    truth, predicted = np.asarray(label, dtype=bool), np.asarray(pred, dtype=bool)
    panels = [
        ("image", rgb),
        ("ground truth", _tint(rgb, truth, TRUTH_COLOUR)),
        ("prediction", _tint(rgb, predicted, PREDICTION_COLOUR)),
        ("both", _tint(_tint(rgb, truth, TRUTH_COLOUR), predicted, PREDICTION_COLOUR)),
    ]
    return panel_row(panels, path, title)
