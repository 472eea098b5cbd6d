"""Pictures people would rather look at than read: overlays and learning curves (matplotlib, Agg, imported
when drawing), in the style of :mod:`medseg_masksup.io.figure_style`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..io import figure_style as style


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


def overlay_panel(image, masked_image, label, pred, path, title: str = "", dice: float | None = None) -> Path:
    """One case: image | masked input | ground truth | prediction, each mask tinted and outlined in its colour
    (:mod:`~medseg_masksup.io.figure_style`), with the colour key."""
    rgb = to_display(image)
    truth, predicted = mask_to_display(label), mask_to_display(pred)
    panels = [
        ("image", rgb, []),
        ("masked input (MaskSup branch)", to_display(masked_image) if masked_image is not None else rgb * 0, []),
        ("ground truth", style.tint(rgb, truth, style.TRUTH), [(truth, style.TRUTH)]),
        ("prediction" + (f" (Dice {dice:.3f})" if dice is not None else ""), style.tint(rgb, predicted, style.PREDICTION),
         [(predicted, style.PREDICTION)]),
    ]
    return panel_row(panels, path, title, height=3.6, key=[style.TRUTH_KEY, style.PREDICTION_KEY])


Panel = tuple[str, np.ndarray, Sequence[tuple[np.ndarray, style.Colour]]]


def panel_row(panels: Sequence[Panel], path, title: str = "", height: float = 3.8,
              key: Sequence[tuple[str, style.Colour]] = ()) -> Path:
    """``(title, image, [(mask, colour), ...])`` panels in one row (each mask's contour drawn), with the colour
    ``key`` underneath, saved to ``path``."""
    fig, axes = style.pyplot().subplots(1, len(panels), figsize=(13, height))
    for ax, (name, img, contours) in zip(np.atleast_1d(axes), panels):
        style.draw_masks(ax, img, contours, name)
    if title:
        fig.suptitle(title, fontsize=style.FONT_TITLE)
    if key:
        style.colour_key(fig, key)
    return style.save_figure(fig, path)


def learning_curves(history: Sequence[Mapping[str, float]], path, title: str = "") -> Path:
    """Training losses (left) and validation metrics (right) per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, (left, right) = style.pyplot().subplots(1, 2, figsize=(11, 4))
    losses = ("train_loss", "train_loss_seg", "train_loss_masked", "train_loss_consistency")
    colours = style.series_colours([*losses, "val_dice", "val_iou"])
    for key in losses:
        values = [h.get(key) for h in history]
        if any(v is not None and v != 0 for v in values):
            left.plot(epochs, [np.nan if v is None else v for v in values], label=key.replace("train_", ""),
                      color=colours[key])
    left.set_xlabel("epoch")
    left.set_ylabel("loss")
    left.set_title("training loss")
    left.legend()
    for key in ("val_dice", "val_iou"):
        values = [h.get(key, np.nan) for h in history]
        right.plot(epochs, values, marker="o", ms=3, label=key, color=colours[key])
    baseline = next((h["threshold_baseline_dice"] for h in history if "threshold_baseline_dice" in h), None)
    if baseline is not None:
        right.axhline(baseline, color=style.REFERENCE, ls="--", label="Otsu threshold Dice")
    right.set_ylim(0, 1)
    right.set_xlabel("epoch")
    right.set_title("validation")
    right.legend()
    if title:
        fig.suptitle(title, fontsize=style.FONT_TITLE)
    return style.save_figure(fig, path)


def case_overlay(image_rgb: np.ndarray, label: np.ndarray, pred: np.ndarray, path, title: str = "") -> Path:
    """One evaluated case at its native size: image | ground truth | prediction | both (truth only, prediction
    only and their agreement tinted apart, both contours drawn), with the colour key.

    ``image_rgb`` is ``(H, W, 3)`` uint8 or floats in [0, 1]; ``label`` and ``pred`` are ``(H, W)`` masks.
    """
    rgb = np.asarray(image_rgb, dtype=np.float32)
    rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
    truth, predicted = np.asarray(label, dtype=bool), np.asarray(pred, dtype=bool)
    both = [(truth, style.TRUTH), (predicted, style.PREDICTION)]
    panels = [
        ("image", rgb, []),
        ("ground truth", style.tint(rgb, truth, style.TRUTH), both[:1]),
        ("prediction", style.tint(rgb, predicted, style.PREDICTION), both[1:]),
        ("both", style.agreement_tint(rgb, truth, predicted), both),
    ]
    return panel_row(panels, path, title, key=[style.TRUTH_KEY, style.PREDICTION_KEY, style.AGREEMENT_KEY])
