"""Masks and probability maps written on the input's own grid, in a format a viewer opens.

- pictures (PNG/JPG/BMP/TIFF) → PNG, mask 0/255, probability 0–255 (MONAI ``PILWriter``, the
  counterpart of the ``PILReader`` that read the input, so the axes go back as they came);
- NIfTI → NIfTI (``.nii.gz``) with the input's affine, qform/sform and spacing; mask 0/1 uint8;
- DICOM → NIfTI carrying the DICOM geometry (through SimpleITK, which converts LPS to RAS);
- NRRD / MHA → the same format with the input's origin, spacing and direction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import atomic_target
from .case import Case


def output_suffix(case: Case) -> str:
    """File suffix of mask / probability outputs for this case."""
    if case.kind == "image2d":
        return ".png"
    if case.kind == "nifti":
        return ".nii.gz"
    return case.writer_info.get("suffix", ".nii.gz")


def write_mask(case: Case, mask: np.ndarray, path: str | Path) -> Path:
    """Write a binary mask of shape ``case.spatial_shape`` to ``path`` (atomically)."""
    mask = np.asarray(mask).astype(bool)
    _check_shape(case, mask)
    if case.kind == "image2d":
        return _write_png(mask.astype(np.uint8) * 255, Path(path))
    return _write_volume(case, mask.astype(np.uint8), Path(path))


def write_probability(case: Case, prob: np.ndarray, path: str | Path) -> Path:
    """Write a foreground probability map (PNG: 0–255; volumes: float32 0–1)."""
    prob = np.clip(np.asarray(prob, dtype=np.float32), 0.0, 1.0)
    _check_shape(case, prob)
    if case.kind == "image2d":
        return _write_png(np.round(prob * 255).astype(np.uint8), Path(path))
    return _write_volume(case, prob, Path(path))


def _check_shape(case: Case, array: np.ndarray) -> None:
    if tuple(array.shape) != case.spatial_shape:
        raise ValueError(f"{case.source}: result of shape {array.shape} does not match the input {case.spatial_shape}")


def _write_png(array: np.ndarray, path: Path) -> Path:
    """``array`` is ``(W, H)`` as MONAI read it; ``PILWriter`` transposes it back to rows × columns."""
    from monai.data import PILWriter

    writer = PILWriter(output_dtype=np.uint8, scale=None)
    writer.set_data_array(array[None], channel_dim=0, squeeze_end_dims=True)
    writer.set_metadata({"spatial_shape": array.shape}, resample=False)
    with atomic_target(path) as tmp:
        writer.write(str(tmp), verbose=False)
    return path


def _write_volume(case: Case, array: np.ndarray, path: Path) -> Path:
    array = array.reshape(case.writer_info["shape"])
    with atomic_target(path) as tmp:
        if case.kind == "nifti":
            _save_nifti_like(case, array, tmp)
        else:
            _save_sitk(case, array, tmp)
    return path


def _save_nifti_like(case: Case, array: np.ndarray, tmp: Path) -> None:
    """Same NIfTI class, header, affine, qform/sform codes and units as the input."""
    info = case.writer_info
    header = info["header"].copy()
    image = info["image_class"](array, info["affine"], header=header)
    image.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = float(array.min(initial=0)), float(array.max(initial=1))
    image.header["descrip"] = b"medseg-masksup"
    image.to_filename(str(tmp))


def _save_sitk(case: Case, array: np.ndarray, tmp: Path) -> None:
    """ITK index order ``(x, y[, z])`` → SimpleITK image with the input's origin, spacing, direction."""
    import SimpleITK as sitk

    geom = case.writer_info["geometry"]
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose()))
    image.SetSpacing(geom["spacing"])
    image.SetOrigin(geom["origin"])
    image.SetDirection(geom["direction"])
    sitk.WriteImage(image, str(tmp), useCompression=True)
