"""The PraNet polyp benchmark split (Fan et al., MICCAI 2020), used by MaskSup for polyps.

Recognised at ``--src`` or one folder below it:

* ``TrainDataset/{image,mask}``: 900 Kvasir-SEG + 550 CVC-ClinicDB training pairs
  (k-fold; folds are stratified by source: numeric names are CVC-ClinicDB frames);
* ``TestDataset/<name>/{images,masks}`` for ``Kvasir``, ``CVC-ClinicDB``,
  ``CVC-ColonDB``, ``ETIS-LaribPolypDB`` and ``CVC-300``: kept as ``test``, with
  ids ``<name>/<file>`` so that each benchmark can be scored separately.

Masks are PNG; foreground = grey level > 127.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_scripts.masks import THRESHOLD
from data_scripts.pairs import IMAGE_EXT, STEM, Layout, Source, child, find_dir
from data_scripts.problems import PrepareError
from data_scripts.spec import DatasetSpec

TEST_SETS = ("CVC-300", "CVC-ClinicDB", "CVC-ColonDB", "ETIS-LaribPolypDB", "Kvasir")
PATTERN = rf"(?P<id>{STEM}){IMAGE_EXT}"


def _source(split: str, d: Path, subset: str = "") -> Source:
    img = child(d, "images", "image", "imgs")
    msk = child(d, "masks", "mask", "GT", "gts")
    return Source(
        split=split,
        subset=subset,
        image_dir=img or d / ("image" if split == "training" else "images"),
        mask_dir=msk or d / ("mask" if split == "training" else "masks"),
        image_pattern=PATTERN,
        mask_pattern=PATTERN,
        mask_hint="{id}.png",
    )


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Find ``TrainDataset`` and ``TestDataset`` at or below ``src``."""
    root = find_dir(src, lambda d: child(d, "TrainDataset", "TestDataset") is not None, max_depth=1)
    if root is None:
        raise PrepareError(f"no PraNet layout found under {src}: expected TrainDataset/ and TestDataset/ folders")
    sources = []
    train = child(root, "TrainDataset")
    if train is not None:
        sources.append(_source("training", train))
    test = child(root, "TestDataset")
    if test is not None:
        subsets = sorted((p for p in test.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
        sources.extend(_source("test", d, d.name) for d in subsets)
    found = ["TrainDataset"] if train else []
    if test is not None:
        found.append(f"TestDataset ({len(sources) - (1 if train else 0)} sets)")
    return Layout(" + ".join(found), sources)


def group_of(item_id: str) -> str:
    """Source of a TrainDataset item: CVC-ClinicDB frames have numeric names, Kvasir ones do not."""
    return "cvc-clinicdb" if item_id.isdigit() else "kvasir"


SPEC = DatasetSpec(
    name="pranet",
    title="PraNet polyp benchmark (Kvasir-SEG + CVC-ClinicDB train; 5 test sets)",
    help="PraNet polyp split: TrainDataset/{image,mask} + TestDataset/<set>/{images,masks}",
    layouts=(
        "TrainDataset/{image,mask} (Kvasir 900 + CVC-ClinicDB 550; training, k-fold stratified by source) and "
        "TestDataset/{Kvasir,CVC-ClinicDB,CVC-ColonDB,ETIS-LaribPolypDB,CVC-300}/{images,masks} "
        "(test, ids '<set>/<name>'). Foreground = grey > 127."
    ),
    rule=THRESHOLD,
    find_layout=find_layout,
    group_of=group_of,
)
