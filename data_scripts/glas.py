"""GlaS (Gland Segmentation in Colon Histology, Warwick QU, MICCAI 2015).

Two layouts are recognised, at ``--src`` or one folder below it:

* the official release (``Warwick QU Dataset (Released 2016_07_08)``): flat folder of
  ``train_N.bmp`` + ``train_N_anno.bmp`` (training), ``testA_N.bmp``/``testB_N.bmp`` +
  ``..._anno.bmp`` (test, subsets ``testA`` and ``testB``) and ``Grade.csv`` (ignored);
* the widely used repackaged layout ``Train_Folder/{img,labelcol}`` (training),
  optional ``Val_Folder/{img,labelcol}`` (validation) and ``Test_Folder/{img,labelcol}``
  (test), with the same file name for image and label.

Labels are gland instance ids: foreground is every pixel > 0.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from data_scripts.masks import INSTANCE
from data_scripts.pairs import IMAGE_EXT, STEM, Layout, Source, child, find_dir
from data_scripts.problems import PrepareError
from data_scripts.spec import DatasetSpec

_OFFICIAL = re.compile(r"(train|testA|testB)_\d+(_anno)?\.bmp", re.IGNORECASE)
_REPACK_SPLITS = (("Train_Folder", "training"), ("Val_Folder", "validation"), ("Test_Folder", "test"))


def _official_dir(d: Path) -> bool:
    try:
        return any(_OFFICIAL.fullmatch(p.name) for p in d.iterdir() if p.is_file())
    except OSError:
        return False


def _repack_dir(d: Path) -> bool:
    return any(child(d, folder) is not None for folder, _ in _REPACK_SPLITS)


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Recognise the official or the repackaged GlaS layout under ``src``."""
    root = find_dir(src, lambda d: _official_dir(d) or _repack_dir(d), max_depth=1)
    if root is None:
        raise PrepareError(
            f"no GlaS layout found under {src}: expected train_N.bmp + train_N_anno.bmp files "
            "or Train_Folder/{img,labelcol}"
        )
    if _official_dir(root):
        sources = [
            Source(
                split=split,
                subset=subset,
                image_dir=root,
                mask_dir=root,
                image_pattern=rf"(?P<id>{prefix}_\d+)\.bmp",
                mask_pattern=rf"(?P<id>{prefix}_\d+)_anno\.bmp",
                mask_hint="{id}_anno.bmp",
                image_hint="{id}.bmp",
                qualify_id=False,
            )
            for prefix, split, subset in (("train", "training", ""), ("testA", "test", "testA"), ("testB", "test", "testB"))
        ]
        return Layout("Warwick QU official release (train_N.bmp / train_N_anno.bmp)", sources)
    sources = []
    for folder, split in _REPACK_SPLITS:
        d = child(root, folder)
        if d is None:
            continue
        img, lab = child(d, "img", "images", "image"), child(d, "labelcol", "label", "labels", "masks", "mask")
        sources.append(
            Source(
                split=split,
                image_dir=img or d / "img",
                mask_dir=lab or d / "labelcol",
                image_pattern=rf"(?P<id>{STEM}){IMAGE_EXT}",
                mask_pattern=rf"(?P<id>{STEM}){IMAGE_EXT}",
                mask_hint="{id}.png",
            )
        )
    return Layout("repackaged Train_Folder/Test_Folder {img,labelcol}", sources)


SPEC = DatasetSpec(
    name="glas",
    title="GlaS (Warwick QU gland segmentation)",
    help="GlaS colon histology glands (official BMP release or Train_Folder/Test_Folder PNG layout)",
    layouts=(
        "Official release: train_N.bmp + train_N_anno.bmp (training), testA_N*/testB_N* (test), "
        "Grade.csv ignored. Repackaged: Train_Folder/{img,labelcol} (training), "
        "Val_Folder (validation, optional), Test_Folder (test). Labels are instance ids; foreground = id > 0."
    ),
    rule=INSTANCE,
    find_layout=find_layout,
)
