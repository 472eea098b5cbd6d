"""Which files are read, and by which reader family, decided by name (and content for DICOM)."""

from __future__ import annotations

from pathlib import Path

IMAGE2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
SUPPORTED = ", ".join(IMAGE2D_SUFFIXES + NIFTI_SUFFIXES + SITK_SUFFIXES + DICOM_SUFFIXES) + ", DICOM series folders"


def full_suffix(path: Path) -> str:
    """Lower-case suffix, ``.nii.gz`` counted as one."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def strip_suffix(path: Path) -> str:
    """File name without its (possibly double) suffix."""
    suffix = full_suffix(path)
    return path.name[: len(path.name) - len(suffix)] if suffix else path.name


def looks_like_dicom(path: Path) -> bool:
    """``DICM`` at byte 128 (the DICOM Part 10 preamble)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def kind_of(path: Path) -> str | None:
    """``"image2d"``, ``"nifti"``, ``"sitk"``, ``"dicom"`` or ``None`` for a file we do not read."""
    suffix = full_suffix(path)
    if suffix in IMAGE2D_SUFFIXES:
        return "image2d"
    if suffix in NIFTI_SUFFIXES:
        return "nifti"
    if suffix in SITK_SUFFIXES:
        return "sitk"
    if suffix in DICOM_SUFFIXES or ((not suffix or suffix.lstrip(".").isdigit()) and looks_like_dicom(path)):
        return "dicom"
    return None
