"""A quick-look PNG: the input (one slice for volumes) with the mask tinted and outlined, and a colour key.

The raster pieces (:func:`draw_contour`, :func:`draw_key`) draw in the style of :mod:`.figure_style`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from . import figure_style as style
from .atomic import atomic_target
from .case import Case


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


def draw_contour(rgb: np.ndarray, mask: np.ndarray, colour: style.Colour, width: int) -> np.ndarray:
    """The contour of ``mask`` drawn into ``rgb`` (floats in 0–1, in place): a light line ``width`` px wide just
    inside the mask's edge, with a dark 1 px edge on both sides (:data:`~.figure_style.OUTLINE`)."""
    if not mask.any():
        return rgb
    inner = ndimage.binary_erosion(mask, iterations=width, border_value=0)
    dark_inside = inner & ~ndimage.binary_erosion(inner, border_value=0)
    dark_outside = ndimage.binary_dilation(mask) & ~mask
    rgb[(mask & ~inner)] = colour
    rgb[dark_inside | dark_outside] = style.OUTLINE
    return rgb


def draw_key(image: np.ndarray, entries: list[tuple[str, style.Colour]], avoid: np.ndarray) -> tuple[int, int, int, int]:
    """Draw the colour key into ``image`` (``(H, W, 3)`` uint8, in place): a darkened box with a swatch and a
    name per entry, in the corner where it hides the least of ``avoid`` (the mask). Returns the box
    ``(top, left, bottom, right)``, clipped to the image."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = image.shape[:2]
    size = style.key_font_px(height, width)
    while True:  # shrink the text until the key fits across the picture (8 px at the least)
        font = ImageFont.load_default(size=size)
        pad = max(2, size // 4)
        box_w = int(3 * pad + size + max(font.getlength(name) for name, _ in entries))
        if box_w <= width or size <= 8:
            break
        size -= 1
    box_h = pad + len(entries) * (size + pad)
    box_w, box_h = min(box_w, width), min(box_h, height)
    corners = [(height - box_h, 0), (height - box_h, width - box_w), (0, 0), (0, width - box_w)]
    top, left = min(corners, key=lambda c: int(avoid[c[0] : c[0] + box_h, c[1] : c[1] + box_w].sum()))
    region = image[top : top + box_h, left : left + box_w]
    region[:] = (region * (1 - style.KEY_SHADE)).astype(np.uint8)
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    for row, (name, colour) in enumerate(entries):
        y = top + pad + row * (size + pad)
        draw.rectangle((left + pad, y, left + pad + size - 1, y + size - 1), fill=style.rgb8(colour))
        draw.text((left + 2 * pad + size, y + size / 2), name, fill=style.rgb8(style.KEY_TEXT), font=font, anchor="lm")
    image[:] = np.asarray(picture)
    return top, left, top + box_h, left + box_w


def write_overlay(case: Case, mask: np.ndarray, path: str | Path, alpha: float = style.FILL_ALPHA) -> Path:
    """Write the overlay PNG (pictures appear as in any viewer; volumes show one slice, x across): the mask in
    the prediction colour, tinted and outlined, with its colour key in a corner."""
    from PIL import Image

    index = overlay_slice_index(mask)
    image = case.image if index is None else case.image[..., index]
    plane = mask if index is None else mask[..., index]
    if image.ndim == 4:  # (C, x, y, 1)
        image, plane = image[..., 0], plane[..., 0]
    fg = np.asarray(plane, dtype=bool).T
    rgb = style.tint(display_rgb(image) / 255.0, fg, style.PREDICTION, alpha)
    draw_contour(rgb, fg, style.PREDICTION, style.contour_px(*fg.shape))
    out = np.round(rgb * 255).astype(np.uint8)
    draw_key(out, [style.PREDICTION_KEY], fg)
    with atomic_target(path) as tmp:
        Image.fromarray(out).save(tmp, format="PNG")
    return Path(path)
