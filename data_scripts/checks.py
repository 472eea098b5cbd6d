"""Reading and validating image/mask pairs (each file is read once).

For every pair the image is fully decoded (so truncated or corrupt files are
caught), hashed (file bytes for copying, pixels for duplicate detection) and
measured; the mask is decoded, binarized and encoded as the PNG that will be
written.  Nothing is written here.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from data_scripts.masks import MaskError, binarize, encode_png
from data_scripts.pairs import Pair
from data_scripts.problems import Problem

SPLIT_PRIORITY = {"test": 0, "validation": 1, "training": 2}


@dataclass(frozen=True)
class Checked:
    """A validated pair with everything needed to write it."""

    pair: Pair
    size: tuple[int, int]  # (width, height)
    mask_png: bytes
    foreground: float
    file_sha256: str
    pixel_sha1: str


class ReadError(Exception):
    """A file could not be read; the message is the reason."""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not a recognised image file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    if "truncated" in text.lower():
        return "image file is truncated"
    return text or type(exc).__name__


def read_image(path: Path) -> tuple[bytes, Image.Image]:
    """Read a file's bytes and fully decode it with PIL; raises :class:`ReadError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReadError(_reason(exc)) from exc
    if not data:
        raise ReadError("file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            img.load()
    except Exception as exc:  # PIL raises many types for corrupt data
        raise ReadError(_reason(exc)) from exc
    return data, img


def _read_mask_fallback(path: Path) -> Image.Image:
    """Read a TIFF mask PIL cannot decode with SimpleITK (masks only: images must stay PIL-readable)."""
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    if arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4):
        arr = arr[0]
    return Image.fromarray(np.ascontiguousarray(arr))


def check_pair(pair: Pair, rule: str) -> Checked | list[Problem]:
    """Validate one pair: both files readable, sizes equal, mask binarizable."""
    problems: list[Problem] = []
    image = mask = None
    try:
        data, image = read_image(pair.image)
    except ReadError as exc:
        problems.append(Problem.at(pair.image, "unreadable", f"cannot read {pair.image}: {exc}"))
    try:
        _, mask = read_image(pair.mask)
    except ReadError as exc:
        if pair.mask.suffix.lower() in (".tif", ".tiff") and str(exc) != "file is empty":
            try:
                mask = _read_mask_fallback(pair.mask)
            except Exception:
                mask = None
        if mask is None:
            problems.append(Problem.at(pair.mask, "unreadable", f"cannot read {pair.mask}: {exc}"))
    if image is None or mask is None:
        return problems
    if image.size != mask.size:
        (w, h), (mw, mh) = image.size, mask.size
        return [
            Problem.at(
                pair.image,
                "size_mismatch",
                f"size mismatch: image {pair.image} is {w}x{h} but mask {pair.mask} is {mw}x{mh}",
            )
        ]
    try:
        fg = binarize(mask, rule)
    except MaskError as exc:
        return [Problem.at(pair.mask, "not_binarizable", f"mask {pair.mask} cannot be binarized: {exc}")]
    pixels = hashlib.sha1(f"{image.mode}{image.size}".encode())
    pixels.update(image.tobytes())
    return Checked(
        pair=pair,
        size=image.size,
        mask_png=encode_png(fg),
        foreground=float(fg.mean()) if fg.size else 0.0,
        file_sha256=hashlib.sha256(data).hexdigest(),
        pixel_sha1=pixels.hexdigest(),
    )


def check_pairs(
    pairs: list[Pair], rule: str, workers: int = 1, progress: bool | None = None, desc: str = "checking"
) -> tuple[list[Checked], list[Problem]]:
    """Check all pairs (in parallel threads), then drop exact duplicate images.

    Returns the accepted pairs in input order and the problems found.
    """
    checked: list[Checked] = []
    problems: list[Problem] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = pool.map(lambda p: check_pair(p, rule), pairs)
        for res in tqdm(results, total=len(pairs), desc=desc, unit="pair", disable=_disable(progress)):
            if isinstance(res, Checked):
                checked.append(res)
            else:
                problems.extend(res)
    kept, dup_problems = drop_duplicates(checked)
    return kept, problems + dup_problems


def drop_duplicates(checked: list[Checked]) -> tuple[list[Checked], list[Problem]]:
    """Keep one pair per distinct image (pixel-identical); prefer test, then validation, then training.

    Keeping the test copy means an image never appears both in test and in
    training (no leakage); within a split the first pair by id is kept.
    """
    by_hash: dict[str, list[Checked]] = {}
    for c in checked:
        by_hash.setdefault(c.pixel_sha1, []).append(c)
    dropped: set[int] = set()
    problems: list[Problem] = []
    for group in by_hash.values():
        if len(group) < 2:
            continue
        group = sorted(group, key=lambda c: (SPLIT_PRIORITY[c.pair.split], c.pair.id))
        keep = group[0]
        for c in group[1:]:
            dropped.add(id(c))
            where = "" if c.pair.split == keep.pair.split else f" ({c.pair.split} copy skipped, {keep.pair.split} copy kept)"
            problems.append(
                Problem.at(
                    c.pair.image,
                    "duplicate",
                    f"duplicate image: {c.pair.image} is identical to {keep.pair.image}{where}",
                )
            )
    return [c for c in checked if id(c) not in dropped], problems


def _disable(progress: bool | None) -> bool | None:
    """tqdm ``disable`` value: None = automatic (bar only on a terminal)."""
    if progress is None:
        return None
    return not progress
