"""PNG / JPG / BMP / TIFF: :class:`Image2DReader`, the one way such a file becomes an array, in training
(its ``LoadImaged``, :func:`image2d_loader`) and inference and evaluation (:func:`read_image2d`; masks with
``label=True`` in both).

MONAI reads a picture as ``(W, H[, C])``; with ``ensure_channel_first`` it is ``(C, W, H)``: the
spatial axes are transposed relative to numpy's ``(rows, cols)``. The model was trained on this
layout, and :func:`..write_mask.write_mask` writes PNG masks back with MONAI's ``PILWriter``, which
undoes the transpose, so a mask pixel lands on the input pixel it was predicted for.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from monai.data import PILReader
from monai.transforms import LoadImaged
from monai.utils import ensure_tuple

from .case import Case
from ..errors import InputError
from .formats import kind_of
from .intensity import standard_mode, stored_bits_of_mode


class Image2DReader(PILReader):
    """MONAI's ``PILReader`` (axes ``(W, H[, C])``, values in the file's own dtype) with this package's rules.

    An image (``label=False``) is read in :func:`.intensity.standard_mode` (palette, bilevel, CMYK … become
    L / RGB / RGBA; 16-bit and float values kept). A mask (``label=True``) keeps its stored values (palette
    indices, instance ids), which ``label_threshold`` then separates. Suffixes: :data:`.formats.IMAGE2D_SUFFIXES`.
    """

    def __init__(self, label: bool = False) -> None:
        super().__init__(converter=None if label else standard_mode)
        self.label = label

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        return all(kind_of(Path(name)) == "image2d" for name in ensure_tuple(filename))


def image2d_loader(key: str, label: bool = False) -> LoadImaged:
    """Training's ``LoadImaged`` for ``key``, channel first: an image in its stored dtype (its bit depth tells
    how to scale it), a mask as float32."""
    if label:
        return LoadImaged(key, reader=Image2DReader(label=True), image_only=True, ensure_channel_first=True)
    return LoadImaged(key, reader=Image2DReader(), dtype=None, image_only=True, ensure_channel_first=True)

@functools.cache
def quiet_loader(reader_name: str):
    """A cached ``LoadImage(reader=...)`` for ``"pil"`` (images), ``"pil-label"`` (masks) or ``"nibabel"`` (built
    once: MONAI probes its optional DICOM GPU plugin, and warns about its absence, every time a loader is built)."""
    from monai.data import NibabelReader
    from monai.transforms import LoadImage

    reader = Image2DReader(label=reader_name == "pil-label") if reader_name.startswith("pil") else NibabelReader()
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return LoadImage(reader=reader, image_only=True, ensure_channel_first=True)


def read_image2d(path: Path, label: bool = False) -> Case:
    """A 2D picture as ``(C, W, H)`` float32 (grey: 1 channel, RGB: 3, RGBA: 4; 16-bit values kept); a mask
    (``label=True``) with its stored values, as training's :func:`image2d_loader` reads it."""
    from PIL import Image

    try:  # PIL's own verdict first: MONAI would try its other readers and report their errors instead
        with Image.open(path) as probe:
            mode = probe.mode
            probe.verify()
    except Exception as err:  # noqa: BLE001 - PIL raises many types for broken files
        raise InputError(f"{path}: cannot be read as an image ({_reason(err)})") from None
    try:
        image = quiet_loader("pil-label" if label else "pil")(str(path))
    except Exception as err:  # noqa: BLE001 - PIL raises many types for broken files
        raise InputError(f"{path}: cannot be read as an image ({_reason(err)})") from None
    array = np.asarray(image.numpy() if hasattr(image, "numpy") else image, dtype=np.float32)
    if array.ndim != 3:
        raise InputError(f"{path}: expected a 2D picture, got an array of shape {tuple(array.shape)}")
    return Case(source=path, kind="image2d", image=array, files=[path], writer_info={"shape": array.shape[1:]},
                stored_bits=stored_bits_of_mode(mode))


def _reason(err: BaseException) -> str:
    """The innermost message (MONAI wraps reader errors in its own)."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".rstrip(": ")
