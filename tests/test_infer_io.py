"""Readers and writers without a model: a mask computed on what was read must land, once written,
on exactly the input's pixels/voxels and carry the input's geometry."""

from __future__ import annotations

import numpy as np
import pytest
from infer_fixtures import box_mask, dicom_ras_affine, picture, write_dicom_series

from medseg_masksup.io import InputError, discover_cases, read_case
from medseg_masksup.io.atomic import atomic_target
from medseg_masksup.io.summary import count_components, mask_statistics
from medseg_masksup.io.write_mask import output_suffix, write_mask

BOX = (slice(3, 9), slice(14, 25))  # asymmetric, off-centre, in a non-square 20 × 30 picture


def _roundtrip(path, tmp_path):
    case = read_case(path)
    plane = case.image[0]
    mask = plane > (plane.max() + plane.min()) / 2  # the bright object, found in the layout as read
    out = write_mask(case, mask, tmp_path / f"out_mask{output_suffix(case)}")
    return case, out


@pytest.mark.parametrize(
    "name, channels, dtype, mode",
    [("rgb.png", 3, np.uint8, None), ("grey.png", 1, np.uint8, None), ("rgba.png", 4, np.uint8, "RGBA"),
     ("grey16.png", 1, np.uint16, None), ("grey16.tif", 1, np.uint16, None), ("rgb.bmp", 3, np.uint8, None),
     ("rgb.tiff", 3, np.uint8, None), ("rgb.jpg", 3, np.uint8, None), ("palette.png", 1, np.uint8, "P")],
)
def test_picture_mask_lands_on_the_same_pixels(tmp_path, name, channels, dtype, mode):
    from PIL import Image

    fg = 60000 if dtype == np.uint16 else 230
    array = picture(20, 30, BOX, channels=min(channels, 3), fg=fg, dtype=dtype)
    if mode == "RGBA":
        array = np.dstack([array, np.full((20, 30), 255, np.uint8)])
    image = Image.fromarray(array)
    if mode == "P":
        image = image.convert("P")
    image.save(tmp_path / name)
    case, out = _roundtrip(tmp_path / name, tmp_path)
    assert case.image.shape[1:] == (30, 20)  # MONAI layout (W, H): transposed vs numpy
    written = np.array(Image.open(out))
    assert written.shape == (20, 30) and written.dtype == np.uint8
    assert set(np.unique(written)) == {0, 255}
    np.testing.assert_array_equal(written > 0, box_mask((20, 30), BOX))


def test_nifti_mask_keeps_voxels_affine_and_header(tmp_path):
    import nibabel as nib

    volume = np.zeros((12, 10, 5), np.int16)  # (i, j, k)
    volume[2:5, 6:9, 3] = 900
    affine = np.array([[0, -0.7, 0, 12.0], [0.5, 0, 0, -8.0], [0, 0, 2.5, 40.0], [0, 0, 0, 1]])
    src = nib.Nifti1Image(volume, affine)
    src.set_qform(affine, code=1)
    src.set_sform(affine, code=2)
    nib.save(src, tmp_path / "vol.nii.gz")
    case, out = _roundtrip(tmp_path / "vol.nii.gz", tmp_path)
    assert case.spacing == pytest.approx((0.5, 0.7, 2.5))
    result = nib.load(out)
    assert result.shape == volume.shape
    np.testing.assert_allclose(result.affine, affine, atol=1e-6)
    assert int(result.header["qform_code"]) == 1 and int(result.header["sform_code"]) == 2
    np.testing.assert_array_equal(np.asarray(result.dataobj) > 0, volume > 0)


def test_nifti_2d_and_singleton_slice_keep_their_shape(tmp_path):
    import nibabel as nib

    for shape in ((14, 9), (14, 9, 1)):
        data = np.zeros(shape, np.float32)
        data[3:6, 1:4] = 5.0
        nib.save(nib.Nifti1Image(data, np.diag([0.3, 0.4, 1.0, 1.0])), tmp_path / "p.nii")
        case, out = _roundtrip(tmp_path / "p.nii", tmp_path)
        result = nib.load(out)
        assert result.shape == shape
        np.testing.assert_array_equal(np.asarray(result.dataobj) > 0, data > 0)


def test_dicom_series_gives_nifti_with_dicom_geometry(tmp_path):
    import nibabel as nib

    volume = np.zeros((4, 12, 16), np.int16)  # (slice, row, column)
    for k in range(4):
        volume[k, 2:5, 3 + 3 * k : 6 + 3 * k] = 800  # moves with the slice: a wrong slice order shows
    spacing, origin, row_dir, col_dir = (0.8, 0.6, 2.5), (10.0, -20.0, 30.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)
    write_dicom_series(tmp_path / "series", volume, spacing, origin, row_dir, col_dir)
    (source,) = discover_cases(tmp_path / "series")
    assert source.kind == "dicom" and len(source.files) == 4
    case = read_case(source.path, source.kind, source.files)
    out = write_mask(case, case.image[0] > 400, tmp_path / "series_mask.nii.gz")
    result = nib.load(out)
    assert result.shape == (16, 12, 4)  # (column, row, slice)
    np.testing.assert_allclose(result.affine, dicom_ras_affine(spacing, origin, row_dir, col_dir), atol=1e-4)
    np.testing.assert_array_equal(np.asarray(result.dataobj) > 0, volume.transpose(2, 1, 0) > 0)


def test_nrrd_and_mha_keep_format_and_geometry(tmp_path):
    import SimpleITK as sitk

    volume = np.zeros((3, 10, 14), np.uint16)  # (z, y, x)
    volume[1, 2:4, 9:12] = 1000
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.4, 0.9, 3.0))
    image.SetOrigin((5.0, 6.0, -7.0))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    for suffix in (".nrrd", ".mha"):
        sitk.WriteImage(image, str(tmp_path / f"v{suffix}"))
        case, out = _roundtrip(tmp_path / f"v{suffix}", tmp_path)
        assert out.name.endswith(suffix)
        result = sitk.ReadImage(str(out))
        assert result.GetSize() == image.GetSize()
        assert result.GetSpacing() == pytest.approx(image.GetSpacing())
        assert result.GetOrigin() == pytest.approx(image.GetOrigin())
        assert result.GetDirection() == pytest.approx(image.GetDirection())
        np.testing.assert_array_equal(sitk.GetArrayFromImage(result) > 0, volume > 0)


def test_multiframe_dicom_keeps_frame_order_and_geometry(tmp_path):
    import nibabel as nib
    import SimpleITK as sitk

    volume = np.zeros((5, 12, 10), np.uint16)  # (frame, row, column)
    for k in range(5):
        volume[k, 1 + 2 * k : 3 + 2 * k, 2:6] = 1000
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.5, 0.7, 2.0))
    image.SetOrigin((1.0, 2.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "multi.dcm"))  # GDCM writes a multi-frame object
    case, out = _roundtrip(tmp_path / "multi.dcm", tmp_path)
    result = nib.load(out)
    assert result.shape == (10, 12, 5)
    expected = np.diag([-0.5, -0.7, 2.0, 1.0])
    expected[:3, 3] = (-1.0, -2.0, 3.0)  # LPS origin → RAS
    np.testing.assert_allclose(result.affine, expected, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(result.dataobj) > 0, volume.transpose(2, 1, 0) > 0)


@pytest.mark.parametrize(
    "name, content, reason",
    [("broken.png", b"\x89PNG\r\n\x1a\n garbage", "cannot be read as an image"),
     ("empty.nii.gz", b"", "file is empty"),
     ("broken.nii.gz", b"\x1f\x8b not really gzip", "cannot be read as NIfTI"),
     ("broken.dcm", b"\0" * 128 + b"DICM" + b"\0" * 10, "cannot be read as DICOM"),
     ("broken.nrrd", b"NRRD0004\ntype: what\n", "cannot be read by SimpleITK"),
     ("notes.txt", b"hello", "not a supported image format")],
)
def test_unreadable_files_name_the_file_and_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError) as err:
        read_case(tmp_path / name)
    assert str(tmp_path / name) in str(err.value) and reason in str(err.value)


def test_nifti_4d_is_refused_with_its_shape(tmp_path):
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(InputError, match=r"t\.nii\.gz: 4D NIfTI of shape \(4, 4, 3, 2\) is not supported"):
        read_case(tmp_path / "t.nii.gz")


def test_atomic_target_leaves_nothing_on_failure_and_replaces_on_success(tmp_path):
    target = tmp_path / "out" / "mask.png"
    with pytest.raises(RuntimeError):
        with atomic_target(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("writer crashed")
    assert not target.exists() and list((tmp_path / "out").iterdir()) == []
    target.write_bytes(b"old")
    with atomic_target(target) as tmp:
        assert tmp.name.endswith(".png") and tmp.parent == target.parent
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and len(list((tmp_path / "out").iterdir())) == 1


def test_statistics_count_area_and_components():
    mask = np.zeros((10, 12), bool)
    mask[1:3, 1:4] = True  # 6 px
    mask[5:9, 5:9] = True  # 16 px
    mask[9, 9] = True  # touches the second diagonally: same component (8-connectivity)
    stats = mask_statistics(mask, (0.5, 0.25))
    assert stats["foreground_px"] == 23 and stats["n_components"] == 2
    assert stats["foreground_physical"] == pytest.approx(23 * 0.125) and stats["physical_unit"] == "mm2"
    assert stats["foreground_fraction"] == pytest.approx(23 / 120)
    volume = np.zeros((4, 4, 3), bool)
    volume[0, 0, 0] = volume[3, 3, 2] = True
    stats = mask_statistics(volume, (1.0, 2.0, 3.0))
    assert stats["physical_unit"] == "mm3" and stats["foreground_physical"] == pytest.approx(12.0)
    assert count_components(volume) == 2 and mask_statistics(mask, None)["physical_unit"] == ""


def test_rgb_2d_nrrd_reads_channels_first_and_keeps_2d_geometry(tmp_path):
    import SimpleITK as sitk

    array = picture(20, 30, BOX, channels=3)  # (rows, cols, 3)
    image = sitk.GetImageFromArray(array, isVector=True)
    image.SetSpacing((0.25, 0.5))
    image.SetOrigin((2.0, 3.0))
    sitk.WriteImage(image, str(tmp_path / "rgb.nrrd"))
    case, out = _roundtrip(tmp_path / "rgb.nrrd", tmp_path)
    assert case.image.shape == (3, 30, 20) and case.spacing == (0.25, 0.5)
    result = sitk.ReadImage(str(out))
    assert result.GetDimension() == 2 and result.GetNumberOfComponentsPerPixel() == 1
    assert result.GetSpacing() == (0.25, 0.5) and result.GetOrigin() == (2.0, 3.0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result) > 0, box_mask((20, 30), BOX))
