"""One entry point: read any supported case into a :class:`Case` (:func:`read_case`), or a label file into the
mask training sees (:func:`read_label`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .case import Case
from ..errors import InputError
from .formats import SUPPORTED, kind_of
from .intensity import NonFiniteImageError, fill_nonfinite
from .labels import binarise_label


def read_case(path: str | Path, kind: str | None = None, files: list[Path] | None = None) -> Case:
    """Read ``path`` (a file, or a DICOM series folder with its ordered ``files``).

    NaN / inf values are replaced and counted in ``Case.nonfinite`` (the rule of
    :func:`medseg_masksup.io.intensity.fill_nonfinite`, as training reads them). Raises :class:`InputError`
    naming the file and the reason when it cannot be read, or holds no finite value at all.
    """
    case = _read(Path(path), kind, files)
    try:
        case.nonfinite = fill_nonfinite(case.image)
    except NonFiniteImageError as err:
        raise InputError(f"{case.source}: {err}; nothing to segment") from None
    return case


def read_label(path: str | Path, threshold: float) -> np.ndarray:
    """A label file as training reads it: its stored values (pictures: palette indices and instance ids, through
    :class:`.read_image2d.Image2DReader` ``(label=True)``; volumes as :func:`read_case` reads them), binarised by
    training's rule :func:`.labels.binarise_label` into a boolean array of the spatial shape.

    Raises :class:`InputError` naming the file when it cannot be read or holds NaN / inf values.
    """
    case = _read(Path(path), None, None, label=True)
    return np.asarray(binarise_label(case.image, threshold, str(case.source)))[0]


def _read(path: Path, kind: str | None, files: list[Path] | None, label: bool = False) -> Case:
    path = Path(path)
    kind = kind or (kind_of(path) if path.is_file() else None)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    if kind == "image2d":
        from .read_image2d import read_image2d

        return read_image2d(path, label=label)
    if kind == "nifti":
        from .read_nifti import read_nifti

        return read_nifti(path)
    if kind == "sitk":
        from .read_sitk import read_sitk

        return read_sitk(path)
    if kind == "dicom":
        from .read_sitk import read_dicom

        return read_dicom(path, files or [path])
    raise InputError(f"{path}: not a supported image format (supported: {SUPPORTED})")
