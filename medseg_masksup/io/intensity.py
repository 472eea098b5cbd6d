"""How an image's raw values are read, the same in training, validation, evaluation and inference.

The rules, each defined once here (the readers of :mod:`medseg_masksup.io` and training's transforms in
:mod:`medseg_masksup.data` both apply them):

- **PIL modes** (:func:`standard_mode`): palette, bilevel, CMYK … pictures become L / RGB / RGBA before
  their values are read; 16-bit and float modes are kept (applied to images by
  :class:`.read_image2d.Image2DReader`, in training and inference; masks are read as stored, :mod:`.labels`).

- **Bit depth per image** (:func:`image_bit_depth`). An image stored in 8 bits per value (PNG/JPEG ``L``,
  ``RGB``…, a ``uint8`` NIfTI/DICOM) always spans ``0 .. 255`` and is never rescaled. An image stored
  deeper (16-bit PNG/TIFF, float, ``int16`` volumes) is scaled from the training record's ``bit_depth``
  (detected over the deep images of the datalist: 12 for a 12-bit scan in 16-bit PNGs). So a datalist
  mixing 8-bit and 16-bit pictures trains on both at full range, and an 8-bit input to a 16-bit model is
  read as 8-bit.
- **Non-finite values** (:func:`fill_nonfinite`). NaN and −inf become the image's smallest finite value,
  +inf its largest; they are counted and reported (training: one warning line per file at the datalist
  check; inference: the case's ``message`` and ``nonfinite_values``). An image without a single finite
  value cannot be read: it is an error naming the file. A mask's are never filled in: it is refused
  (:mod:`.labels`).
"""

from __future__ import annotations

import numpy as np

#: PIL modes that hold 8 bits per value (read as ``0 .. 255``; palette and bilevel images become L / RGB)
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})


def stored_bits_of_mode(mode: str) -> int:
    """Bits per value of a PIL mode: 8 for :data:`EIGHT_BIT_MODES`, 16 for ``I;16*``, else 32 (``I``, ``F``)."""
    if mode in EIGHT_BIT_MODES:
        return 8
    return 16 if mode.startswith("I;16") else 32


def stored_bits_of_dtype(dtype) -> int:
    """Bits per value of a numpy / torch dtype (8 for ``uint8`` / ``int8`` / ``bool``)."""
    itemsize = getattr(dtype, "itemsize", None)
    if itemsize is None:  # torch dtypes before 2.1 lack itemsize
        import torch

        itemsize = torch.empty((), dtype=dtype).element_size()
    return 8 * int(itemsize)


def image_bit_depth(record_bit_depth: int, stored_bits: int | None) -> int:
    """The bit depth an image's values are scaled from: 8 for an image stored in 8 bits, else the record's."""
    return 8 if stored_bits == 8 else int(record_bit_depth)


class NonFiniteImageError(ValueError):
    """An image with no finite value at all (every value NaN or infinite)."""


def fill_nonfinite(array: np.ndarray) -> int:
    """Replace ``array``'s non-finite values in place (NaN, −inf → smallest finite value; +inf → largest)
    and return how many there were. Integer arrays are returned untouched (0).

    Raises :class:`NonFiniteImageError` when no value is finite.
    """
    if not np.issubdtype(array.dtype, np.floating):
        return 0
    finite = np.isfinite(array)
    bad = int(array.size - np.count_nonzero(finite))
    if bad == 0:
        return 0
    if bad == array.size:
        raise NonFiniteImageError(f"no finite pixel value (all {bad} are NaN or infinite)")
    values = array[finite]
    low, high = values.min(), values.max()
    array[np.isposinf(array)] = high
    array[~np.isfinite(array)] = low
    return bad


def nonfinite_note(count: int, total: int) -> str:
    """The one wording of what :func:`fill_nonfinite` did, for warnings and inference summaries."""
    return (f"{count} of {total} pixel values are not finite (NaN/inf); set to the image's smallest finite "
            "value (NaN, -inf) or largest (+inf)")


#: PIL modes read as they are; the others are converted first (palette colours, CMYK, bilevel...).
_PIL_CONVERT = {"1": "L", "LA": "L", "P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


def standard_mode(image):
    """A PIL image in L / RGB / RGBA (16-bit and float modes untouched): palette indices become colours."""
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert(_PIL_CONVERT[image.mode]) if image.mode in _PIL_CONVERT else image
