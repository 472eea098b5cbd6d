"""Per-case numbers (area, foreground fraction, connected components) and the summary tables."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from .atomic import write_json, write_text


def count_components(mask: np.ndarray) -> int:
    """Connected foreground components, with full connectivity (8 in 2D, 26 in 3D) as MONAI's
    ``KeepLargestConnectedComponent`` uses by default."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return 0
    _, n = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    return int(n)


def mask_statistics(mask: np.ndarray, spacing: Sequence[float] | None) -> dict[str, Any]:
    """Foreground size in pixels/voxels and, when the spacing is known, in mm² (2D) or mm³ (volumes)."""
    mask = np.asarray(mask, dtype=bool)
    count = int(mask.sum())
    is_volume = mask.ndim == 3 and mask.shape[2] > 1
    stats: dict[str, Any] = {
        "foreground_px": count,
        "foreground_fraction": count / mask.size if mask.size else 0.0,
        "n_components": count_components(mask),
        "foreground_physical": "",
        "physical_unit": "",
    }
    if spacing is not None:
        dims = 3 if is_volume else 2
        stats["foreground_physical"] = count * math.prod(float(s) for s in spacing[:dims])
        stats["physical_unit"] = "mm3" if is_volume else "mm2"
    return stats


COLUMNS = (
    "case", "source", "status", "message", "mask", "overlay", "probability", "shape", "spacing_mm",
    "foreground_px", "foreground_physical", "physical_unit", "foreground_fraction", "n_components",
    "intensity_mapped_from", "seconds",
)
#: added after ``probability`` / before ``seconds`` when a run has quality scores (``infer --uncertainty``)
QUALITY_COLUMNS = ("uncertainty", "quality_score", "review")


def summary_columns(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """:data:`COLUMNS`, with :data:`QUALITY_COLUMNS` when any row has a quality score."""
    if not any("quality_score" in r for r in rows):
        return COLUMNS
    at = COLUMNS.index("probability") + 1
    return (*COLUMNS[:at], QUALITY_COLUMNS[0], *COLUMNS[at:-1], *QUALITY_COLUMNS[1:], COLUMNS[-1])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "x".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value)
    return value


def write_summary(rows: list[dict[str, Any]], output_dir: str | Path, run_info: dict[str, Any]) -> tuple[Path, Path]:
    """``summary.csv`` (one row per case, failures included) and ``summary.json`` (rows + run settings)."""
    output_dir = Path(output_dir)
    buffer = io.StringIO()
    columns = summary_columns(rows)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    csv_path = write_text(output_dir / "summary.csv", buffer.getvalue())
    json_path = write_json(output_dir / "summary.json", {**run_info, "cases": rows})
    return csv_path, json_path
