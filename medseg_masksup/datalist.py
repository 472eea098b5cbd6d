"""Reading a prepared ``datalist.json``: train/validation split and a dataset fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from monai.data import load_decathlon_datalist


class DatalistError(ValueError):
    """A datalist that cannot be trained on; the message names the file and the problem."""


def load_split(datalist: str | os.PathLike, val_fold: int = 0) -> tuple[list[dict], list[dict]]:
    """Training and validation items with absolute paths.

    Validation is the datalist's ``validation`` list when it is non-empty, otherwise the
    ``training`` items whose ``fold`` equals ``val_fold``. ``test`` is never read here.
    """
    path = Path(datalist)
    if not path.is_file():
        raise DatalistError(f"datalist not found: {path} (give --datalist a prepared datalist.json)")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatalistError(f"datalist {path} is not valid JSON: {err}") from None
    if not raw.get("training"):
        raise DatalistError(f"datalist {path} has no 'training' items")
    base = str(path.parent)
    training = load_decathlon_datalist(path, data_list_key="training", base_dir=base)
    validation = load_decathlon_datalist(path, data_list_key="validation", base_dir=base) if raw.get("validation") else []
    if not validation:
        if any("fold" not in item for item in training):
            raise DatalistError(f"datalist {path} has no 'validation' list and its training items lack a 'fold' key")
        validation = [item for item in training if int(item["fold"]) == val_fold]
        training = [item for item in training if int(item["fold"]) != val_fold]
        if not validation:
            folds = sorted({int(item["fold"]) for item in training})
            raise DatalistError(f"datalist {path}: no training item has fold {val_fold} (folds present: {folds})")
    if not training:
        raise DatalistError(f"datalist {path}: nothing left to train on after holding out the validation split")
    for item in training + validation:
        for key in ("image", "label"):
            if key not in item:
                raise DatalistError(f"datalist {path}: an item has no '{key}': {item}")
            if not os.path.isfile(item[key]):
                raise DatalistError(f"datalist {path}: {key} file not found: {item[key]}")
        check_pair(item["image"], item["label"], source=path)
    return training, validation


def _picture_size(file: str, source: Path) -> tuple[int, int]:
    from PIL import Image

    if os.path.getsize(file) == 0:
        raise DatalistError(f"datalist {source}: {file} is empty (0 bytes)")
    try:
        with Image.open(file) as img:
            size = img.size
            img.verify()  # structure and checksums (PNG CRCs)
        with Image.open(file) as img:
            img.load()  # every pixel decoded: verify() reads no JPEG data, so a truncated JPEG would pass
    except Exception as err:  # noqa: BLE001 - PIL raises many types for broken files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatalistError(f"datalist {source}: cannot read {file} as an image ({reason})") from None
    return size


def check_pair(image: str, label: str, source: Path) -> None:
    """Both files are fully decodable pictures of the same size."""
    image_size, label_size = _picture_size(image, source), _picture_size(label, source)
    if image_size != label_size:
        raise DatalistError(
            f"datalist {source}: size mismatch: image {image} is {image_size[0]}x{image_size[1]} "
            f"but mask {label} is {label_size[0]}x{label_size[1]}"
        )


def fingerprint(items: list[dict], keys: tuple[str, ...] = ("image", "label")) -> str:
    """``"<n files>:<sha256 prefix>"`` over the names and bytes of every file the items point at."""
    digest = hashlib.sha256()
    paths = sorted({item[k] for item in items for k in keys if k in item})
    for p in paths:
        digest.update(os.path.basename(p).encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return f"{len(paths)}:{digest.hexdigest()[:16]}"


#: bit depths a picture's values are read as (8-bit modes need no look at the pixels)
BIT_DEPTHS = (8, 10, 12, 14, 16)
_EIGHT_BIT_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}


def bit_depth(items: list[dict], key: str = "image") -> int:
    """The bit depth of the items' pictures: 8 when all are 8-bit, otherwise the smallest of
    :data:`BIT_DEPTHS` that holds the largest value found (a 12-bit scan in a 16-bit PNG gives 12)."""
    from PIL import Image

    top = 0.0
    for item in items:
        with Image.open(item[key]) as img:
            if img.mode in _EIGHT_BIT_MODES:
                continue
            extrema = img.getextrema()
            highs = [e[1] for e in extrema] if isinstance(extrema[0], tuple) else [extrema[1]]
            top = max(top, *map(float, highs))
    if top <= 255:
        return 8
    return next((b for b in BIT_DEPTHS if top <= 2**b - 1), 32)
