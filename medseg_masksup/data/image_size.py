"""Pictures too small, or too long and thin, to train on: refused by the datalist check, naming the file.

Training squashes each image to ``--img_size`` (or cuts patches from it): a 1x1 picture becomes one flat
colour, and a 20000x20 strip a smear a few pixels tall, so the network would learn nothing from either and say
nothing about it. Any real picture of the supported kinds (histology, endoscopy, dermoscopy) clears these bounds
by far.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatalistError

#: the shortest side, in pixels, of a picture worth segmenting
MIN_SIDE = 8
#: the largest ratio of the longer side to the shorter one
MAX_ASPECT = 20.0


def size_problem(width: int, height: int) -> str | None:
    """What is wrong with a ``width`` x ``height`` picture for training, or ``None``."""
    if min(width, height) < MIN_SIDE:
        return f"is {width}x{height} pixels: too small to segment (each side must be at least {MIN_SIDE} pixels)"
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        return (f"is {width}x{height} pixels: an aspect ratio of {aspect:.0f}:1, beyond {MAX_ASPECT:.0f}:1 (squashed "
                "to the network's input it would be a smear; cut it into tiles first)")
    return None


def refuse_odd_size(image: str | os.PathLike, width: int, height: int, source: str | os.PathLike) -> None:
    """Raise a :class:`~medseg_masksup.errors.DatalistError` naming ``image`` (of datalist ``source``) when its
    size cannot be trained on (:func:`size_problem`)."""
    problem = size_problem(width, height)
    if problem:
        raise DatalistError(f"datalist {Path(source)}: image {image} {problem}")
