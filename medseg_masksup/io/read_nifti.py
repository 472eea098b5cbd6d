"""NIfTI (``.nii``/``.nii.gz``, 2D or 3D) through MONAI's ``NibabelReader``, voxel order kept as stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .case import Case
from ..errors import InputError
from .intensity import stored_bits_of_dtype
from .read_image2d import _reason, quiet_loader


def read_nifti(path: Path) -> Case:
    """``(1, i, j[, k])`` float32 in the file's voxel order; affine and header kept for the writer.

    No reorientation: masks are written back on exactly the input's voxel grid. Trailing singleton
    dimensions beyond the third are dropped for inference and restored on writing.
    """
    import nibabel as nib

    try:
        header_img = nib.load(str(path))
        stored_shape = tuple(int(s) for s in header_img.shape)
        image = quiet_loader("nibabel")(str(path))
    except Exception as err:  # noqa: BLE001 - nibabel/gzip raise many types for broken files
        raise InputError(f"{path}: cannot be read as NIfTI ({_reason(err)})") from None
    array = np.asarray(image.numpy(), dtype=np.float32)[0]
    extra = stored_shape[3:]
    if any(s != 1 for s in extra):
        raise InputError(
            f"{path}: {len(stored_shape)}D NIfTI of shape {stored_shape} is not supported "
            "(give a 2D image or a 3D volume; split time series / multi-channel files first)"
        )
    array = array.reshape(stored_shape[:3])
    if array.ndim < 2:
        raise InputError(f"{path}: NIfTI of shape {stored_shape} has fewer than 2 spatial dimensions")
    slope, inter = header_img.header.get_slope_inter()
    scaled = slope not in (None, 1.0) or inter not in (None, 0.0)  # stored integers mapped to other values
    unit = header_img.header.get_xyzt_units()[0]
    to_mm = {"meter": 1000.0, "micron": 0.001}.get(unit, 1.0)  # "mm" and "unknown" are taken as mm
    zooms = tuple(float(z) * to_mm for z in header_img.header.get_zooms()[: array.ndim])
    return Case(
        source=path,
        kind="nifti",
        image=array[None],
        affine=np.asarray(header_img.affine, dtype=np.float64),
        spacing=zooms,
        files=[path],
        writer_info={"shape": stored_shape, "header": header_img.header.copy(), "affine": header_img.affine,
                     "image_class": type(header_img)},
        stored_bits=None if scaled else stored_bits_of_dtype(header_img.header.get_data_dtype()),
    )
