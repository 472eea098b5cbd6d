"""A quick-look PNG: the input (one slice for volumes) with the mask outlined and tinted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import atomic_target
from .case import Case

FILL = np.array([255, 40, 40], dtype=np.float32)
EDGE = np.array([255, 255, 0], dtype=np.uint8)


def overlay_slice_index(mask: np.ndarray) -> int | None:
    """For a 3D mask, the slice (last axis) with the most foreground (the middle one if empty)."""
    if mask.ndim < 3:
        return None
    areas = mask.reshape(-1, mask.shape[-1]).sum(axis=0)
    return int(np.argmax(areas)) if areas.any() else mask.shape[-1] // 2


def display_rgb(image: np.ndarray) -> np.ndarray:
    """``(C, x, y)`` → ``(y, x, 3)`` uint8, contrast stretched between the 0.5 and 99.5 percentiles."""
    channels = image[:3] if image.shape[0] >= 3 else np.repeat(image[:1], 3, axis=0)
    lo, hi = np.percentile(channels, [0.5, 99.5])
    scaled = np.clip((channels - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    return np.ascontiguousarray(scaled.transpose(2, 1, 0)).astype(np.uint8)


def write_overlay(case: Case, mask: np.ndarray, path: str | Path, alpha: float = 0.35) -> Path:
    """Write the overlay PNG (pictures appear as in any viewer; volumes show one slice, x across)."""
    from PIL import Image

    index = overlay_slice_index(mask)
    image = case.image if index is None else case.image[..., index]
    plane = mask if index is None else mask[..., index]
    if image.ndim == 4:  # (C, x, y, 1)
        image, plane = image[..., 0], plane[..., 0]
    rgb = display_rgb(image).astype(np.float32)
    fg = np.asarray(plane, dtype=bool).T
    rgb[fg] = (1 - alpha) * rgb[fg] + alpha * FILL
    out = rgb.astype(np.uint8)
    edge = fg & ~ndimage.binary_erosion(fg, border_value=0)
    out[edge] = EDGE
    with atomic_target(path) as tmp:
        Image.fromarray(out).save(tmp, format="PNG")
    return Path(path)
