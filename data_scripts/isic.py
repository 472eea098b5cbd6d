"""ISIC 2018 Task 1 (lesion boundary segmentation, ISIC Archive / HAM10000).

Recognised at ``--src`` or one folder below it, as the official zips extract:

* ``ISIC2018_Task1-2_Training_Input/ISIC_nnnnnnn.jpg`` +
  ``ISIC2018_Task1_Training_GroundTruth/ISIC_nnnnnnn_segmentation.png`` (training, k-fold);
* the same for ``Validation`` (-> ``validation``) and ``Test`` (-> ``test``).

An input folder without its ground-truth folder (or the reverse) is reported and
skipped.  ``LICENSE.txt``/``ATTRIBUTION.txt`` are ignored.  Foreground = grey > 127.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_scripts.masks import THRESHOLD
from data_scripts.pairs import Layout, Source, child, find_dir
from data_scripts.problems import PrepareError, Problem
from data_scripts.spec import DatasetSpec

SPLITS = (("Training", "training"), ("Validation", "validation"), ("Test", "test"))


def _dirs(root: Path, part: str) -> tuple[str, str]:
    return f"ISIC2018_Task1-2_{part}_Input", f"ISIC2018_Task1_{part}_GroundTruth"


def _has_any(d: Path) -> bool:
    return any(child(d, *_dirs(d, part)) is not None for part, _ in SPLITS)


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Find the ISIC 2018 Task 1 input/ground-truth folder pairs."""
    root = find_dir(src, _has_any, max_depth=1)
    if root is None:
        raise PrepareError(
            f"no ISIC 2018 layout found under {src}: expected ISIC2018_Task1-2_Training_Input/ and "
            "ISIC2018_Task1_Training_GroundTruth/"
        )
    sources, problems, parts = [], [], []
    for part, split in SPLITS:
        in_name, gt_name = _dirs(root, part)
        inp, gt = child(root, in_name), child(root, gt_name)
        if inp is None and gt is None:
            continue
        if gt is None:
            problems.append(
                Problem.at(inp, "layout", f"ground-truth folder missing for {inp} (expected {root / gt_name}); its images are skipped")
            )
            continue
        if inp is None:
            problems.append(
                Problem.at(gt, "layout", f"input folder missing for {gt} (expected {root / in_name}); its masks are skipped")
            )
            continue
        parts.append(part)
        sources.append(
            Source(
                split=split,
                image_dir=inp,
                mask_dir=gt,
                image_pattern=r"(?P<id>ISIC_\d+)\.jpe?g",
                mask_pattern=r"(?P<id>ISIC_\d+)_segmentation\.png",
                mask_hint="{id}_segmentation.png",
                image_hint="{id}.jpg",
            )
        )
    return Layout("ISIC2018 Task 1 (" + ", ".join(parts) + ")", sources, problems)


SPEC = DatasetSpec(
    name="isic2018",
    title="ISIC 2018 Task 1 (lesion boundary segmentation)",
    help="ISIC 2018 Task 1 skin lesions (Training/Validation/Test _Input + _GroundTruth folders)",
    layouts=(
        "ISIC2018_Task1-2_{Training,Validation,Test}_Input/ISIC_nnnnnnn.jpg + "
        "ISIC2018_Task1_{Training,Validation,Test}_GroundTruth/ISIC_nnnnnnn_segmentation.png "
        "(training k-fold, validation, test). Foreground = grey > 127."
    ),
    rule=THRESHOLD,
    find_layout=find_layout,
)
