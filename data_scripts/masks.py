"""Turning a dataset's label image into a binary mask, and encoding it as PNG.

Two rules cover all supported datasets:

* ``instance`` (GlaS): labels are instance ids; foreground is any pixel > 0 (in any
  channel, so colour-coded instance maps work too).
* ``threshold`` (Kvasir-SEG, CVC-ClinicDB, PraNet, ISIC, PH2): black/white masks,
  possibly RGB and JPEG-noisy; foreground is a grey level > 127 (half of the full
  scale for 16-bit masks).  Masks whose values are only 0 and 1 are read as 0/1.
  A mask is refused when its channels disagree (a colour picture, not a mask) or
  when more than :data:`MAX_GREY_FRACTION` of its pixels are mid-grey.

Palette (mode ``P``) masks: under ``instance`` the palette indices are the ids
(foreground = index > 0).  Under ``threshold`` a palette whose used entries are
distinct grey levels (e.g. black/white, in either order) is read by those grey
levels as above; any other palette (coloured class labels such as (128, 0, 0),
several indices sharing one colour, or indices missing from the palette, as in a
PNG saved without a palette) is a label map and foreground = index > 0.

Written masks are single-channel 8-bit PNG with values 0 (background) and 255
(foreground).
"""

from __future__ import annotations

import io
from functools import reduce

import numpy as np
from PIL import Image

INSTANCE = "instance"
THRESHOLD = "threshold"
RULES = (INSTANCE, THRESHOLD)

#: Largest fraction of pixels allowed strictly between 1/4 and 3/4 of full scale.
MAX_GREY_FRACTION = 0.05
#: Largest fraction of pixels whose channels differ by more than 1/4 of full scale.
MAX_COLOUR_FRACTION = 0.01

FOREGROUND = 255


class MaskError(ValueError):
    """The label image cannot be turned into a binary mask; the message says why."""


def _as_array(img: Image.Image, rule: str) -> np.ndarray:
    """Pixel array of a label image, without alpha; palette images expanded for ``threshold``."""
    if img.mode in ("P", "PA"):
        indices = np.asarray(img)
        if indices.ndim == 3:  # PA: drop alpha
            indices = indices[..., 0]
        if rule == INSTANCE or _palette_is_labels(img, indices):
            return indices > 0  # palette indices are the labels: foreground = index > 0
        img = img.convert("RGBA" if img.mode == "PA" or "transparency" in img.info else "RGB")
    elif img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    return arr


def _palette_is_labels(img: Image.Image, indices: np.ndarray) -> bool:
    """Whether a palette image's indices, not its colours, carry the labels (see the module notes)."""
    used = np.unique(indices)
    palette = np.asarray(img.getpalette("RGB") or [], dtype=np.int32).reshape(-1, 3)
    if used.size == 0:
        return False
    if int(used.max()) >= len(palette):
        return True  # indices without a colour: PIL would show them black
    colours = palette[used]
    if np.any(colours.max(axis=1) - colours.min(axis=1) > 255 / 4):
        return True  # coloured class labels
    return len(np.unique(colours, axis=0)) < len(used)  # grey levels that do not tell the indices apart


def _full_scale(arr: np.ndarray) -> float:
    if arr.dtype == np.uint8:
        return 255.0
    vmax = float(arr.max()) if arr.size else 0.0
    if vmax <= 255:
        return 255.0
    if vmax <= 65535:
        return 65535.0
    return vmax


def _channels(arr: np.ndarray) -> list[np.ndarray]:
    return [arr[..., i] for i in range(arr.shape[2])] if arr.ndim == 3 else [arr]


def _fraction(flags: np.ndarray) -> float:
    return np.count_nonzero(flags) / flags.size if flags.size else 0.0


def binarize(img: Image.Image, rule: str) -> np.ndarray:
    """Boolean (H, W) foreground mask of ``img`` under ``rule``; raises :class:`MaskError`."""
    if rule not in RULES:
        raise ValueError(f"unknown mask rule {rule!r}")
    arr = _as_array(img, rule)
    if arr.ndim not in (2, 3):
        raise MaskError(f"unexpected pixel array shape {arr.shape}")
    chans = _channels(arr)  # per-channel slices: much faster than reducing over a short last axis
    if arr.dtype == bool:
        return reduce(np.logical_or, chans).copy()
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise MaskError("contains NaN or infinite values")
    if rule == INSTANCE:
        if np.issubdtype(arr.dtype, np.floating) and not np.all(arr == np.round(arr)):
            raise MaskError("values are not integer instance ids")
        return reduce(np.logical_or, [c > 0 for c in chans])
    # threshold rule, on the sum of the channels (n * grey level) to stay in integers
    scale = _full_scale(arr)
    n = len(chans)
    if n > 1:
        spread = reduce(np.maximum, chans).astype(np.float32) - reduce(np.minimum, chans)
        colour = _fraction(spread > scale / 4)
        if colour > MAX_COLOUR_FRACTION:
            raise MaskError(
                f"it is a colour image ({colour:.1%} of pixels have differing channels), "
                "expected a black/white mask"
            )
        if np.issubdtype(arr.dtype, np.integer):
            acc = np.uint16 if arr.dtype.itemsize == 1 else np.int64
        else:
            acc = np.float64
        total = sum(c.astype(acc) for c in chans)
    else:
        total = arr
    if total.size and total.min() >= 0 and total.max() <= n and np.all((total == 0) | (total == n)):
        return total == n  # already a 0/1 mask
    ambiguous = _fraction((total > n * scale / 4) & (total < n * scale * 3 / 4))
    if ambiguous > MAX_GREY_FRACTION:
        lo, hi = int(scale / 4) + 1, int(np.ceil(scale * 3 / 4)) - 1
        raise MaskError(
            f"{ambiguous:.1%} of pixels are grey (between {lo} and {hi}), not clearly background or foreground"
        )
    return total > n * scale / 2


def encode_png(fg: np.ndarray) -> bytes:
    """Encode a boolean mask as a single-channel 8-bit PNG with values 0/255 (deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(fg.astype(np.uint8) * FOREGROUND).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()
