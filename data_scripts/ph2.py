"""PH2 (dermoscopic images, Hospital Pedro Hispano, Matosinhos; 200 cases).

Recognised at ``--src`` when it is, or holds (up to two levels down), the
``PH2 Dataset images`` folder: one folder per case,
``IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` (image) and
``IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp`` (lesion mask).  ``IMDnnn_roi`` colour
class masks and the ``PH2_dataset.txt``/``.xlsx`` tables are ignored.  All pairs
are training data (k-fold).  Masks are BMP (1-bit or 8-bit/RGB 0/255):
foreground = grey > 127.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from data_scripts.masks import THRESHOLD
from data_scripts.pairs import Layout, Source, find_dir
from data_scripts.problems import PrepareError
from data_scripts.spec import DatasetSpec

_CASE = re.compile(r"IMD\d+", re.IGNORECASE)


def _is_images_dir(d: Path) -> bool:
    try:
        return any(p.is_dir() and _CASE.fullmatch(p.name) for p in d.iterdir())
    except OSError:
        return False


def find_layout(src: Path, options: dict[str, Any]) -> Layout:
    """Find the folder holding the ``IMDnnn`` case folders."""
    root = find_dir(src, _is_images_dir, max_depth=2)
    if root is None:
        raise PrepareError(
            f"no PH2 layout found under {src}: expected 'PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp'"
        )
    source = Source(
        split="training",
        image_dir=root,
        mask_dir=root,
        image_pattern=r"(?P<id>IMD\d+)/(?P=id)_Dermoscopic_Image/(?P=id)\.bmp",
        mask_pattern=r"(?P<id>IMD\d+)/(?P=id)_lesion/(?P=id)_lesion\.bmp",
        mask_hint="{id}/{id}_lesion/{id}_lesion.bmp",
        image_hint="{id}/{id}_Dermoscopic_Image/{id}.bmp",
        depth=2,
    )
    return Layout("PH2 Dataset images/IMDnnn/ nested folders", [source])


SPEC = DatasetSpec(
    name="ph2",
    title="PH2 dermoscopic images",
    help="PH2 skin lesions (PH2 Dataset images/IMDnnn/{IMDnnn_Dermoscopic_Image,IMDnnn_lesion}/*.bmp)",
    layouts=(
        "'PH2 Dataset images'/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp + IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp; "
        "IMDnnn_roi folders ignored. All pairs are training data (k-fold). Foreground = grey > 127."
    ),
    rule=THRESHOLD,
    find_layout=find_layout,
)
