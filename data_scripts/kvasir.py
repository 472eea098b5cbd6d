"""Kvasir-SEG (Simula, 1000 polyp images with masks).

Recognised at ``--src`` or one folder below it (the zip extracts to ``Kvasir-SEG/``):

* ``images/*.jpg`` + ``masks/*.jpg`` with the same names.  Without split files every
  pair is training data (k-fold).  Split files ``train.txt``, ``val.txt`` and
  ``test.txt`` (one image name per line, with or without extension) next to the
  folders, or in ``--split-dir``, assign the pairs to training/validation/test.
* ``{train,val,test}/{images,masks}`` subfolders: an official split; ``val`` becomes
  ``validation`` and ``test`` becomes ``test``.

Masks are RGB JPEG with compression noise: foreground is grey level > 127.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from data_scripts.masks import THRESHOLD
from data_scripts.pairs import IMAGE_EXT, STEM, Layout, Source, child, find_dir, is_image_name, list_files
from data_scripts.problems import PrepareError, Problem
from data_scripts.spec import DatasetSpec

SPLIT_FOLDERS = {
    "training": ("train", "training"),
    "validation": ("val", "valid", "validation"),
    "test": ("test", "testing"),
}
SPLIT_FILES = {
    "training": ("train.txt", "training.txt"),
    "validation": ("val.txt", "valid.txt", "validation.txt"),
    "test": ("test.txt",),
}
PATTERN = rf"(?P<id>{STEM}){IMAGE_EXT}"


def _pair_dirs(d: Path) -> tuple[Path, Path] | None:
    img, msk = child(d, "images", "image"), child(d, "masks", "mask")
    return (img, msk) if img is not None and msk is not None else None


def _source(split: str, images: Path, masks: Path, ids: frozenset[str] | None = None) -> Source:
    return Source(
        split=split,
        image_dir=images,
        mask_dir=masks,
        image_pattern=PATTERN,
        mask_pattern=PATTERN,
        mask_hint="{id}.jpg",
        ids=ids,
    )


def _split_folders(d: Path) -> dict[str, Path]:
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        sub = child(d, *names)
        if sub is not None and _pair_dirs(sub) is not None:
            found[split] = sub
    return found


def read_split_file(path: Path) -> list[str]:
    """Ids listed in a split file: one name per line, folders and image extensions stripped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PrepareError(f"cannot read split file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    ids = []
    for line in text.splitlines():
        name = line.strip().replace("\\", "/").rsplit("/", 1)[-1]
        if not name or name.startswith("#"):
            continue
        if is_image_name(name):
            name = name.rsplit(".", 1)[0]
        ids.append(name)
    return ids


def _with_split_files(root: Path, images: Path, masks: Path, split_dir: Path) -> Layout:
    files = {}
    for split, names in SPLIT_FILES.items():
        for n in names:
            if (split_dir / n).is_file():
                files[split] = split_dir / n
                break
    problems: list[Problem] = []
    listed: dict[str, list[str]] = {}
    for split, f in files.items():
        for i in read_split_file(f):
            listed.setdefault(i, []).append(split)
    on_disk = {}
    for rel in list_files(images, 0)[0]:
        if is_image_name(rel):
            on_disk.setdefault(rel.rsplit(".", 1)[0], rel)
    for i, splits in sorted(listed.items()):
        if len(set(splits)) > 1:
            names = " and ".join(files[s].name for s in sorted(set(splits)))
            problems.append(Problem.at(images / on_disk.get(i, i), "split", f"'{i}' is listed in both {names}; skipped"))
        elif i not in on_disk:
            problems.append(
                Problem.at(files[splits[0]], "split", f"split file {files[splits[0]]} lists '{i}' but there is no image '{i}.*' in {images}")
            )
    listed_names = ", ".join(f.name for f in files.values())
    for i, rel in sorted(on_disk.items()):
        if i not in listed:
            problems.append(
                Problem.at(images / rel, "split", f"image '{rel}' is not listed in any split file ({listed_names}); skipped")
            )
    sources = [
        _source(split, images, masks, frozenset(i for i, s in listed.items() if set(s) == {split}))
        for split in files
    ]
    return Layout(f"images/ + masks/ with split files ({listed_names})", sources, problems)


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Recognise ``images/ + masks/`` (optionally with split files) or ``{train,val,test}/{images,masks}``."""
    root = find_dir(src, lambda d: _pair_dirs(d) is not None or bool(_split_folders(d)), max_depth=1)
    if root is None:
        raise PrepareError(
            f"no Kvasir-SEG layout found under {src}: expected images/ and masks/ folders "
            "(or train/ and val/ folders holding them)"
        )
    split_dir = options.get("split_dir")
    if split_dir is not None and not Path(split_dir).is_dir():
        raise PrepareError(f"split folder not found: {split_dir}")
    pair_dirs = _pair_dirs(root)
    if pair_dirs is not None:
        images, masks = pair_dirs
        sdir = Path(split_dir) if split_dir is not None else root
        if any((sdir / n).is_file() for names in SPLIT_FILES.values() for n in names):
            return _with_split_files(root, images, masks, sdir)
        if split_dir is not None:
            raise PrepareError(f"no split files (train.txt, val.txt, test.txt) found in {split_dir}")
        return Layout("images/ + masks/", [_source("training", images, masks)])
    folders = _split_folders(root)
    sources = [_source(split, *_pair_dirs(d)) for split, d in folders.items()]  # type: ignore[misc]
    names = "/".join(d.name for d in folders.values())
    return Layout(f"{names} split folders with images/ + masks/", sources)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Kvasir-specific options."""
    parser.add_argument(
        "--split-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder holding train.txt / val.txt / test.txt split files (default: look next to images/)",
    )


SPEC = DatasetSpec(
    name="kvasir",
    title="Kvasir-SEG",
    help="Kvasir-SEG polyps (images/ + masks/ JPEG; optional train/val split folders or split files)",
    layouts=(
        "images/*.jpg + masks/*.jpg with the same names (all training, k-fold), optionally with split files "
        "train.txt/val.txt/test.txt; or train/, val/, test/ folders each holding images/ + masks/ "
        "(val -> validation, test -> test). Masks are RGB JPEG: foreground = grey > 127."
    ),
    rule=THRESHOLD,
    find_layout=find_layout,
    add_arguments=add_arguments,
)
