"""CVC-ClinicDB (612 colonoscopy frames from 31 sequences, Hospital Clinic Barcelona).

Recognised at ``--src`` or up to two folders below it: a folder holding
``Original/N.tif`` and ``Ground Truth/N.tif`` (also ``GroundTruth``), as in the
official release, or the PNG variant of the same layout (e.g. Kaggle's
``PNG/Original`` + ``PNG/Ground Truth``).  When both a TIFF and a PNG copy are
present the TIFF (original) one is used unless ``--variant png``.  All pairs are
training data (k-fold).  Masks: foreground = grey level > 127.

Note: MONAI's default reader choice cannot read ``.tif`` images; the bundle must
load them with ``PILReader`` (it does for all 2D formats).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from data_scripts.masks import THRESHOLD
from data_scripts.pairs import IMAGE_EXT, STEM, Layout, Source, child, list_files
from data_scripts.problems import PrepareError
from data_scripts.spec import DatasetSpec

GT_NAMES = ("Ground Truth", "GroundTruth", "Ground_Truth", "Ground truth")


def _candidates(src: Path, max_depth: int = 2) -> list[tuple[Path, Path, Path]]:
    """All (folder, Original, Ground Truth) triples at or below ``src``."""
    found = []
    level = [src]
    for _ in range(max_depth + 1):
        nxt = []
        for d in level:
            orig, gt = child(d, "Original"), child(d, *GT_NAMES)
            if orig is not None and gt is not None:
                found.append((d, orig, gt))
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")))
            except OSError:
                continue
        level = nxt
    return found


def _kind(folder: Path) -> str:
    exts = {rel.rsplit(".", 1)[-1].lower() for rel in list_files(folder, 0)[0] if "." in rel}
    if exts & {"tif", "tiff"}:
        return "tif"
    if "png" in exts:
        return "png"
    return "other"


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Find ``Original`` + ``Ground Truth`` folders (TIFF preferred over PNG unless ``--variant``)."""
    found = _candidates(src)
    if not found:
        raise PrepareError(f"no CVC-ClinicDB layout found under {src}: expected 'Original' and 'Ground Truth' folders")
    variant = options.get("variant") or "auto"
    kinds = [(_kind(orig), d, orig, gt) for d, orig, gt in found]
    if variant != "auto":
        kinds = [k for k in kinds if k[0] == variant]
        if not kinds:
            raise PrepareError(f"no {variant.upper()} copy of CVC-ClinicDB found under {src}")
    kinds.sort(key=lambda k: ({"tif": 0, "png": 1}.get(k[0], 2), len(k[1].parts), str(k[1])))
    kind, _, orig, gt = kinds[0]
    source = Source(
        split="training",
        image_dir=orig,
        mask_dir=gt,
        image_pattern=rf"(?P<id>{STEM}){IMAGE_EXT}",
        mask_pattern=rf"(?P<id>{STEM}){IMAGE_EXT}",
        mask_hint="{id}.tif" if kind == "tif" else "{id}.png",
    )
    return Layout(f"Original/ + Ground Truth/ ({kind.upper()})", [source])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CVC-ClinicDB-specific options."""
    parser.add_argument(
        "--variant",
        choices=("auto", "tif", "png"),
        default="auto",
        help="which copy to use when both TIFF and PNG folders exist (default: auto = TIFF)",
    )


SPEC = DatasetSpec(
    name="cvc-clinicdb",
    title="CVC-ClinicDB",
    help="CVC-ClinicDB polyps (Original/ + Ground Truth/, TIFF or PNG)",
    layouts=(
        "Original/N.tif + 'Ground Truth'/N.tif (or the PNG variant, e.g. PNG/Original + PNG/Ground Truth), "
        "found at --src or up to two folders below. All pairs are training data (k-fold). "
        "Foreground = grey > 127."
    ),
    rule=THRESHOLD,
    find_layout=find_layout,
    add_arguments=add_arguments,
)
