"""Writing a case's uncertainty map on the input's own grid, beside its mask.

Pictures get a heat-map PNG the size of the input (colour map ``inferno``, the figure style's
:data:`~medseg_masksup.io.figure_style.HEAT_MAP`: black = certain, 0 bits; bright yellow
= 1 bit, a coin toss); every other input gets the map as float32 0–1 in the mask's own format and geometry
(NIfTI affine and header, or the NRRD/MHA/DICOM-derived origin, spacing and direction), written by the same code
as the probability map (:func:`medseg_masksup.io.write_mask.write_probability`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.case import Case
from ..io.figure_style import HEAT_MAP

SUFFIX = "_uncertainty"


def heat_map_rgb(values: np.ndarray) -> np.ndarray:
    """``(x, y)`` values in 0–1 → ``(y, x, 3)`` uint8 RGB (rows × columns, as viewers show the picture)."""
    from matplotlib import colormaps

    rgba = colormaps[HEAT_MAP](np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0).T)
    return np.round(rgba[..., :3] * 255).astype(np.uint8)


def write_uncertainty(case: Case, values: np.ndarray, path: str | Path) -> Path:
    """Write the map (``case.spatial_shape``, bits 0–1) to ``path`` atomically, as described in the module doc."""
    from PIL import Image

    from ..io.atomic import atomic_target
    from ..io.write_mask import write_probability

    values = np.asarray(values, dtype=np.float32)
    if tuple(values.shape) != case.spatial_shape:
        raise ValueError(f"{case.source}: uncertainty map of shape {values.shape} does not match the input {case.spatial_shape}")
    if case.kind != "image2d":
        return write_probability(case, values, path)
    with atomic_target(path) as tmp:
        Image.fromarray(heat_map_rgb(values)).save(tmp, format="PNG")
    return Path(path)
