"""The floor any trained model must clear: Otsu's global threshold on the grey image."""

from __future__ import annotations

import numpy as np


def otsu_threshold(grey: np.ndarray) -> float:
    """Otsu's threshold of an image with values in [0, 255]."""
    hist, edges = np.histogram(grey, bins=256, range=(0, 256))
    prob = hist / max(hist.sum(), 1)
    omega = np.cumsum(prob)
    mu = np.cumsum(prob * np.arange(256))
    between = (mu[-1] * omega - mu) ** 2 / np.clip(omega * (1 - omega), 1e-12, None)
    return float(edges[int(np.argmax(between)) + 1])


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = pred.sum() + label.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(pred, label).sum() / total)


def threshold_dice(image: np.ndarray, label: np.ndarray) -> float:
    """Dice of Otsu's threshold on ``image`` (channel-first or 2D, values 0..255) with the better polarity.

    Choosing the polarity with the label flatters the baseline; it is still only a floor.
    """
    grey = image.mean(axis=0) if image.ndim == 3 else image
    fg = grey > otsu_threshold(grey)
    label = label.astype(bool).reshape(fg.shape)
    return max(dice(fg, label), dice(~fg, label))
