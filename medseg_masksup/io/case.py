"""One input case: a channel-first image array and the geometry of the grid it came in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .intensity import nonfinite_note


@dataclass
class Case:
    """An image as read, ready for a 2D model applied slice by slice.

    Attributes:
        source: the file, or the folder of a DICOM series.
        kind: reader family: ``"image2d"`` (PNG/JPG/BMP/TIFF), ``"nifti"``, ``"dicom"`` or ``"sitk"`` (NRRD/MHA).
        image: float32 array ``(C, *spatial)``. Spatial axes are in the order MONAI's readers give
            (x/column first: ``(W, H)`` for 2D pictures, voxel order ``(i, j[, k])`` for volumes), which
            is also the layout training saw. Volumes are segmented slice by slice along the last axis.
        affine: 4×4 voxel-to-world (RAS, mm) matrix of the spatial axes, ``None`` for plain pictures.
        spacing: physical size of a pixel/voxel per spatial axis in mm, ``None`` when unknown.
        files: the files read (several for a DICOM series).
        writer_info: what the writer of this kind needs to reproduce the geometry exactly.
        stored_bits: bits per value as stored (8 for 8-bit pictures and ``uint8`` volumes: read as
            0..255 whatever the model's ``bit_depth``, see :mod:`medseg_masksup.io.intensity`); ``None`` if unknown.
        nonfinite: NaN / inf values found and replaced on reading (:func:`.readers.read_case`).
    """

    source: Path
    kind: str
    image: np.ndarray
    affine: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    files: list[Path] = field(default_factory=list)
    writer_info: dict[str, Any] = field(default_factory=dict)
    stored_bits: int | None = None
    nonfinite: int = 0

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.image.shape[1:])

    @property
    def notes(self) -> list[str]:
        """What reading changed that the user should know (non-finite values replaced)."""
        return [f"{self.source}: {nonfinite_note(self.nonfinite, self.image.size)}"] if self.nonfinite else []

    @property
    def is_volume(self) -> bool:
        """More than one slice along the last spatial axis."""
        return len(self.spatial_shape) == 3 and self.spatial_shape[2] > 1
