"""NRRD / MHA and DICOM (single file, multi-frame, series) through SimpleITK.

MONAI's ``ITKReader`` is not installed, and its ``PydicomReader`` does not fit here: with its default
``swap_ij`` it swaps the frame and row axes of multi-frame files, reads RGB DICOM as a 3-slice
volume, and orders series by InstanceNumber only. SimpleITK (GDCM) orders slices along the slice
normal and reads multi-frame geometry. Arrays are returned in ITK index order ``(x, y[, z])`` — the
order MONAI's DICOM/ITK readers also use — with the channel first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .case import Case
from ..errors import InputError
from .intensity import stored_bits_of_dtype


def geometry(image) -> dict:
    """Size, spacing, origin and direction of a SimpleITK image (LPS, mm)."""
    return {
        "size": tuple(int(s) for s in image.GetSize()),
        "spacing": tuple(float(s) for s in image.GetSpacing()),
        "origin": tuple(float(o) for o in image.GetOrigin()),
        "direction": tuple(float(d) for d in image.GetDirection()),
        "dimension": int(image.GetDimension()),
    }


def ras_affine(geom: dict) -> np.ndarray:
    """4×4 index-to-RAS affine of an ITK geometry (ITK works in LPS)."""
    dim = geom["dimension"]
    direction = np.eye(3)
    direction[:dim, :dim] = np.asarray(geom["direction"]).reshape(dim, dim)
    spacing = np.ones(3)
    spacing[:dim] = geom["spacing"]
    origin = np.zeros(3)
    origin[:dim] = geom["origin"]
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing[None, :]
    affine[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _to_case(image, source: Path, kind: str, files: list[Path]) -> Case:
    import SimpleITK as sitk

    geom = geometry(image)
    if geom["dimension"] not in (2, 3):
        raise InputError(f"{source}: {geom['dimension']}D images are not supported (2D or 3D only)")
    array = sitk.GetArrayFromImage(image)  # (z, y, x[, c]) / (y, x[, c])
    stored_bits = stored_bits_of_dtype(array.dtype)
    dim = geom["dimension"]
    if image.GetNumberOfComponentsPerPixel() == 1:
        array = array[..., None]
    array = np.moveaxis(array, -1, 0)  # channel first
    array = np.ascontiguousarray(array.transpose(0, *range(dim, 0, -1)), dtype=np.float32)  # (C, x, y[, z])
    return Case(
        source=source,
        kind=kind,
        image=array,
        affine=ras_affine(geom),
        spacing=geom["spacing"],
        files=files,
        writer_info={"shape": array.shape[1:], "geometry": geom, "suffix": _suffix(source) if kind == "sitk" else ".nii.gz"},
        stored_bits=stored_bits,
    )


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".nhdr": ".nrrd", ".mhd": ".mha"}.get(suffix, suffix)


def read_sitk(path: Path) -> Case:
    """An NRRD / MHA (/ NHDR, MHD) file; the mask is written in the same format."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"{path}: cannot be read by SimpleITK ({_first_line(err)})") from None
    return _to_case(image, path, "sitk", [path])


def read_dicom(source: Path, files: list[Path]) -> Case:
    """One DICOM file (single- or multi-frame) or a series (``files`` ordered along the slice normal)."""
    import SimpleITK as sitk

    try:
        if len(files) == 1:
            image = sitk.ReadImage(str(files[0]))
        else:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames([str(f) for f in files])
            image = reader.Execute()
    except RuntimeError as err:
        without = _without_pixel_data(files)
        if without is not None:
            raise InputError(
                f"{without}: DICOM file without pixel data (no PixelData element: a header-only object, "
                "e.g. a report or a structure set, not an image)"
            ) from None
        raise InputError(f"{source}: cannot be read as DICOM ({_first_line(err)})") from None
    return _to_case(image, source, "dicom", list(files))


PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _without_pixel_data(files: list[Path]) -> Path | None:
    """The first of ``files`` that pydicom parses as DICOM but that holds no pixel data, if any."""
    import pydicom

    for path in files:
        try:
            ds = pydicom.dcmread(path, force=True, defer_size=256)
        except Exception:  # noqa: BLE001, S112 - not parseable at all: SimpleITK's reason is reported instead
            continue
        meta = getattr(ds, "file_meta", None) or {}
        is_dicom = "SOPClassUID" in ds or "Modality" in ds or "TransferSyntaxUID" in meta
        if is_dicom and not any(tag in ds for tag in PIXEL_TAGS):
            return Path(path)
    return None


def _first_line(err: BaseException) -> str:
    """ITK error texts are long; keep the informative line."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for line in lines:
        if "ERROR" in line or "Unable" in line or "Could not" in line:
            return line.split(": ", 1)[-1] if "itk::ERROR" in line else line
    return lines[-1] if lines else type(err).__name__
