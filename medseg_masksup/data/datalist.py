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
import sys
from pathlib import Path
from typing import Any

from ..errors import DatalistError
from ..io.intensity import nonfinite_note
from .image_check import ImageCheckError, ImageFacts, check_files, check_label, image_facts
from .image_size import refuse_odd_size

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
    check_items(training + validation, source=path)
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


def _facts(file: str, source: Path) -> ImageFacts:
    """The checked facts of one picture; a :class:`DatalistError` naming it when it is unusable."""
    try:
        return image_facts(file)
    except ImageCheckError as err:
        raise DatalistError(f"datalist {source}: {err.about(file)}") from None


def _same_size(image: ImageFacts, label: ImageFacts, source: Path) -> None:
    if (image.width, image.height) != (label.width, label.height):
        raise DatalistError(
            f"datalist {source}: size mismatch: image {image.path} is {image.width}x{image.height} "
            f"but mask {label.path} is {label.width}x{label.height}"
        )


def check_pair(image: str, label: str, source: Path) -> None:
    """Both files are fully decodable pictures of the same size."""
    _same_size(_facts(image, source), _facts(label, source), source)


def check_items(items: list[dict], source: Path) -> None:
    """Every item's image and label are fully decodable pictures of the same size, no image is wholly
    non-finite and no label holds a NaN / inf value; checked in parallel (:func:`.image_check.check_files`),
    the first problem in datalist order raised as a :class:`DatalistError` naming the file. Images with some
    non-finite values are accepted with one warning line each (:mod:`.intensity` says how they are read)."""
    files = [item[key] for item in items for key in ("image", "label")]
    checked = check_files(files, f"checking the {len(files)} files of {Path(source).name}")
    for index, item in enumerate(items):
        pair = [checked[2 * index], check_label(checked[2 * index + 1])]
        for key, fact in zip(("image", "label"), pair):
            if isinstance(fact, ImageCheckError):
                raise DatalistError(f"datalist {source}: {fact.about(item[key])}")
        _same_size(pair[0], pair[1], source)
        refuse_odd_size(item["image"], pair[0].width, pair[0].height, source)
    _warn_nonfinite([fact for fact in checked[0::2] if fact.nonfinite], source)


#: files already warned about (the datalist is checked twice per training: settings check, then split)
_WARNED: set[ImageFacts] = set()
#: warning lines printed per datalist check before the rest are counted in one line
MAX_WARNINGS = 10


def _warn_nonfinite(facts: list[ImageFacts], source: Path) -> None:
    fresh = [fact for fact in dict.fromkeys(facts) if fact not in _WARNED]
    _WARNED.update(fresh)
    for fact in fresh[:MAX_WARNINGS]:
        print(f"warning: datalist {source}: image {fact.path}: {nonfinite_note(fact.nonfinite, fact.values)}",
              file=sys.stderr)
    if len(fresh) > MAX_WARNINGS:
        print(f"warning: datalist {source}: {len(fresh) - MAX_WARNINGS} more images hold non-finite values "
              "(NaN/inf), read the same way", file=sys.stderr)


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


def bit_depth(items: list[dict], key: str = "image") -> int:
    """The bit depth of the items' pictures stored deeper than 8 bits: the smallest of :data:`BIT_DEPTHS`
    that holds the largest value found (a 12-bit scan in a 16-bit PNG gives 12); 8 when there are none.

    8-bit pictures are always read as 8-bit (:func:`.intensity.image_bit_depth`), so a datalist may mix
    both: a one-line note on stderr says so, naming an example of each.
    """
    checked = check_files([item[key] for item in items], f"reading the bit depth of {len(items)} pictures")
    for fact, item in zip(checked, items):
        if isinstance(fact, ImageCheckError):
            raise DatalistError(fact.about(item[key]))
    facts: list[ImageFacts] = checked  # type: ignore[assignment]  # no error left
    deep = [fact for fact in facts if fact.stored_bits > 8]
    top = max((fact.top for fact in deep), default=0.0)
    depth = 8 if top <= 255 else next((b for b in BIT_DEPTHS if top <= 2**b - 1), 32)
    shallow = [fact for fact in facts if fact.stored_bits == 8]
    if deep and shallow:
        print(f"note: the images mix {len(shallow)} 8-bit pictures (e.g. {shallow[0].path}) and {len(deep)} "
              f"deeper ones (e.g. {deep[0].path}, {deep[0].stored_bits}-bit); each is scaled from its own depth: the "
              f"8-bit ones from 0..255, the others from 0..{2**depth - 1} (bit_depth {depth})", file=sys.stderr)
    return depth
