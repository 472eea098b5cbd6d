"""The one home of the ``datalist.json`` schema and its split rules.

A datalist is a JSON object with ``training``, ``validation`` and ``test`` lists of items
(``{"image": ..., "label": ..., "fold": k, "id": ...}``, paths relative to the datalist's folder),
or — for evaluation only — a plain JSON list of items. The split rules, shared by training
(:func:`load_split`) and evaluation (:func:`load_items`):

- validation is the ``validation`` list when it is non-empty, else the **held-out fold**: the
  ``training`` items whose ``fold`` equals ``val_fold`` (:func:`held_out`);
- training is the rest of ``training``; ``test`` is never trained or validated on;
- evaluation's ``auto`` takes the labelled ``test`` items, else ``validation``, else the held-out fold.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import DatalistError

SPLITS = ("auto", "test", "validation", "training", "heldout", "all")


def read_datalist(datalist: str | os.PathLike, hint: str = "") -> dict[str, Any] | list:
    """The parsed JSON of ``datalist``; a missing or invalid file is a :class:`DatalistError` naming it."""
    path = Path(datalist)
    if not path.is_file():
        raise DatalistError(f"datalist not found: {path}{hint}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatalistError(f"datalist {path} is not valid JSON: {err}") from None


def resolve_items(raw_items: list, base: str | os.PathLike) -> list[dict]:
    """Items as dicts with absolute ``image`` / ``label`` paths (a bare string is an image)."""
    items = []
    for item in raw_items:
        item = {"image": item} if isinstance(item, str) else dict(item)
        for key in ("image", "label"):
            if isinstance(item.get(key), str):
                item[key] = os.path.normpath(os.path.join(base, item[key]))
        items.append(item)
    return items


def held_out(training: list[dict], val_fold: int) -> tuple[list[dict], list[dict]]:
    """``(rest, held_out)``: the training items whose ``fold`` is not / is ``val_fold``."""
    inside = [item for item in training if "fold" in item and int(item["fold"]) == int(val_fold)]
    rest = [item for item in training if not ("fold" in item and int(item["fold"]) == int(val_fold))]
    return rest, inside


def _lists(raw: dict, path: Path) -> dict[str, list[dict]]:
    return {k: resolve_items(raw.get(k) or [], path.parent) for k in ("training", "validation", "test")}


def load_split(datalist: str | os.PathLike, val_fold: int = 0) -> tuple[list[dict], list[dict]]:
    """Training and validation items with absolute paths (see the module's split rules).

    Every item must have an ``image`` and a ``label`` that exist and are pictures of the same size.
    """
    path = Path(datalist)
    raw = read_datalist(path, hint=" (give --datalist a prepared datalist.json)")
    if not isinstance(raw, dict) or not raw.get("training"):
        raise DatalistError(f"datalist {path} has no 'training' items")
    lists = _lists(raw, path)
    training, validation = lists["training"], lists["validation"]
    if not validation:
        if any("fold" not in item for item in training):
            raise DatalistError(f"datalist {path} has no 'validation' list and its training items lack a 'fold' key")
        training, validation = held_out(training, val_fold)
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


def load_items(datalist: str | os.PathLike, split: str = "auto", val_fold: int = 0) -> tuple[list[dict], str]:
    """Labelled items of ``datalist`` to evaluate on, and the name of the split chosen.

    ``auto``: the labelled ``test`` items if any, else ``validation``, else the held-out fold
    (``val_fold``, as training validated). ``heldout``: that fold; ``all``: every labelled item.
    A JSON list of items is taken as is.
    """
    path = Path(datalist)
    if split not in SPLITS:
        raise DatalistError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    raw = read_datalist(path)
    if isinstance(raw, list):
        items, chosen = resolve_items(raw, path.parent), "list"
    elif isinstance(raw, dict):
        lists = _lists(raw, path)
        heldout = held_out(lists["training"], val_fold)[1]
        labelled_test = [it for it in lists["test"] if "label" in it]
        if split == "auto":
            for chosen, items in (("test", labelled_test), ("validation", lists["validation"]), (f"heldout-fold{val_fold}", heldout)):
                if items:
                    break
            else:
                raise DatalistError(f"datalist {path}: no labelled test or validation items and no training item with fold {val_fold}; choose --split")
        elif split == "heldout":
            items, chosen = heldout, f"heldout-fold{val_fold}"
        elif split == "all":
            items, chosen = lists["training"] + lists["validation"] + labelled_test, "all"
        else:
            items, chosen = lists[split], split
    else:
        raise DatalistError(f"datalist {path}: expected a JSON object with training/validation/test lists, or a list of items")
    if not items:
        raise DatalistError(f"datalist {path}: split {chosen!r} has no items")
    for item in items:
        for key in ("image", "label"):
            if key not in item:
                raise DatalistError(f"datalist {path}: an item of split {chosen!r} has no {key!r}: {item}")
            if not Path(item[key]).exists():
                raise DatalistError(f"datalist {path}: {key} file not found: {item[key]}")
    return items, chosen


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
