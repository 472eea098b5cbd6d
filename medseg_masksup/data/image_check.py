"""The up-front check of a datalist's pictures: every file checked once, in parallel, with a progress bar.

:func:`image_facts` checks one picture completely (PIL ``verify`` for structure and checksums, then
``load`` for every pixel: a truncated JPEG passes ``verify``; for an 8-bit PNG the CRCs of every chunk,
pixel data included, already prove it whole, and decoding it, 10× the cost, is left to the cache) and
keeps what training needs to know about it (:class:`ImageFacts`). :func:`check_files` runs it over many
files in a thread pool (PIL decodes without holding the GIL) with a ``tqdm`` bar that appears when a
large check takes over a second. Facts are cached per file (path, size, modification time), so the second look at a datalist
(the settings check, then the bundle's split) costs nothing. :func:`check_label` refuses a mask holding NaN / inf
values (an image's are filled in; a mask's are not: :mod:`medseg_masksup.io.labels`).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..io.intensity import EIGHT_BIT_MODES, NonFiniteImageError, fill_nonfinite, stored_bits_of_mode
from ..io.labels import nonfinite_label_note
from ..io.read_image2d import Image2DReader

#: files checked before a progress bar may appear (it shows only once the check has run for a second)
PROGRESS_MIN_FILES = 100
PROGRESS_DELAY_S = 1.0


@dataclass(frozen=True)
class ImageFacts:
    """What the check learnt of one picture."""

    path: str
    width: int
    height: int
    mode: str
    channels: int
    #: bits per stored value (8 for L / RGB / palette…, 16 for ``I;16``, 32 for ``I`` / ``F``)
    stored_bits: int
    #: largest finite value of a picture stored deeper than 8 bits (0.0 for 8-bit pictures)
    top: float
    #: NaN / inf values (float pictures), and all values
    nonfinite: int
    values: int


class ImageCheckError(ValueError):
    """A file that is not a usable picture; :meth:`about` words it for a given file."""

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template

    def about(self, path: str) -> str:
        """The problem, naming ``path``."""
        return self.template.format(file=path)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _reason(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _decode(path: str) -> ImageFacts:
    from PIL import Image

    if os.path.getsize(path) == 0:
        raise ImageCheckError("{file} is empty (0 bytes)")
    try:
        with Image.open(path) as img:
            file_format = img.format
            img.verify()  # structure and checksums (PNG: the CRC of every chunk, pixel data included, and IEND)
        with Image.open(path) as img:
            mode, (width, height), channels = img.mode, img.size, len(img.getbands())
            if not (file_format == "PNG" and mode in EIGHT_BIT_MODES):  # verify() proved an 8-bit PNG whole
                img.load()  # every pixel decoded: verify() reads no JPEG data, so a truncated JPEG would pass
            top, nonfinite = 0.0, 0
            if mode == "F":
                array = np.array(Image2DReader().get_data(img)[0], dtype=np.float32)  # values as training reads them
                nonfinite = fill_nonfinite(array)
                top = float(array.max())
            elif mode not in EIGHT_BIT_MODES:
                extrema = img.getextrema()
                highs = [e[1] for e in extrema] if isinstance(extrema[0], tuple) else [extrema[1]]
                top = max(map(float, highs))
    except NonFiniteImageError as err:
        raise ImageCheckError(f"image {{file}} has {err}") from None
    except Exception as err:  # noqa: BLE001 - PIL raises many types for broken files
        raise ImageCheckError("cannot read {file} as an image (" + _escape(_reason(err)) + ")") from None
    return ImageFacts(path=path, width=int(width), height=int(height), mode=mode, channels=channels,
                      stored_bits=stored_bits_of_mode(mode), top=top, nonfinite=nonfinite,
                      values=int(width) * int(height) * channels)


def check_label(fact: ImageFacts | ImageCheckError) -> ImageFacts | ImageCheckError:
    """The facts of a mask, or the :class:`ImageCheckError` that refuses it: it holds NaN / inf values, which
    ``label > label_threshold`` would silently read as background (the count is named)."""
    if isinstance(fact, ImageFacts) and fact.nonfinite:
        return ImageCheckError("mask {file}: " + _escape(nonfinite_label_note(fact.nonfinite, fact.values)))
    return fact


#: keys of :func:`_cached` that hold facts (so a look-up never decodes)
_checked_keys: set[tuple[str, int, int, int]] = set()


@functools.lru_cache(maxsize=None)
def _cached(path: str, size: int, mtime_ns: int, inode: int) -> ImageFacts:
    facts = _decode(path)
    _checked_keys.add((path, size, mtime_ns, inode))
    return facts


def image_facts(path: str) -> ImageFacts:
    """The facts of the picture at ``path`` (decoded once per file version); :class:`ImageCheckError` if unreadable."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ImageCheckError("cannot read {file} (" + _escape(str(err.strerror)) + ")") from None
    return _cached(path, st.st_size, st.st_mtime_ns, st.st_ino)


def picture_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of a picture: from its checked facts when the file was checked, else its header."""
    try:
        st = os.stat(path)
        if (path, st.st_size, st.st_mtime_ns, st.st_ino) in _checked_keys:
            facts = _cached(path, st.st_size, st.st_mtime_ns, st.st_ino)
            return facts.width, facts.height
    except OSError:
        pass
    from PIL import Image

    with Image.open(path) as img:  # reads the header only
        return int(img.size[0]), int(img.size[1])


def _workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(32, cores + 4))  # a few beyond the cores: files on a network share wait on I/O


def check_files(paths: Sequence[str], what: str) -> list[ImageFacts | ImageCheckError]:
    """Facts of every file in ``paths`` (same order; a failure is returned as its :class:`ImageCheckError`).

    Runs in a thread pool; a progress bar (``what`` names the task) appears on stderr when more than
    :data:`PROGRESS_MIN_FILES` files take longer than :data:`PROGRESS_DELAY_S` to check.
    """
    from tqdm.auto import tqdm

    def one(path: str) -> ImageFacts | ImageCheckError:
        try:
            return image_facts(path)
        except ImageCheckError as err:
            return err

    unique = list(dict.fromkeys(paths))
    bar = tqdm(total=len(unique), desc=what, unit="file", delay=PROGRESS_DELAY_S, file=sys.stderr,
               disable=len(unique) <= PROGRESS_MIN_FILES, mininterval=1.0)
    results: dict[str, ImageFacts | ImageCheckError] = {}
    with bar, ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="datalist-check") as pool:
        for path, result in zip(unique, pool.map(one, unique)):
            results[path] = result
            bar.update(1)
    return [results[p] for p in paths]
