"""End-to-end round trips per input kind with a model that segments bright objects: the test writes
an image/volume with known geometry and a known bright object, runs inference, and checks the mask's
shape, geometry (affine / spacing / orientation) and that the object is found where it is."""

from __future__ import annotations

import json

import numpy as np
import pytest
from infer_fixtures import box_mask, bright_checkpoint, dice, dicom_ras_affine, grown, picture, write_dicom_series

from medseg_masksup.inference.folder import run_folder

H, W = 48, 80
BOX = (slice(8, 24), slice(50, 70))  # off-centre, asymmetric, in a non-square picture


def _check_found(mask: np.ndarray, expected: np.ndarray) -> None:
    assert mask.shape == expected.shape
    assert dice(mask, expected) > 0.75, f"object not found: Dice {dice(mask, expected):.3f}"
    stray = mask & ~grown(expected, 3)
    assert stray.sum() <= 0.02 * expected.sum(), f"{stray.sum()} foreground pixels away from the object"


def _run(src, out, **kwargs):
    return run_folder(src, out, bright_checkpoint(), progress=False, verbose=False, **kwargs)


def _volume(rng, shape_zyx=(4, 30, 40)):
    """CT-like noise (0–300) with a 10 × 10 bright (1000) square that moves along the columns per slice."""
    volume = rng.uniform(0, 300, shape_zyx).astype(np.int16)
    expected = np.zeros(shape_zyx, bool)
    for k in range(shape_zyx[0]):
        expected[k, 6:16, 4 + 7 * k : 14 + 7 * k] = True
    volume[expected] = 1000
    return volume, expected


@pytest.mark.parametrize(
    "name, channels, dtype, fg",
    [("rgb.png", 3, np.uint8, 230), ("grey.jpg", 1, np.uint8, 230), ("rgba.png", 4, np.uint8, 230),
     ("grey16.png", 1, np.uint16, 50000), ("grey16.tif", 1, np.uint16, 50000), ("rgb.bmp", 3, np.uint8, 230)],
)
def test_pictures(tmp_path, name, channels, dtype, fg):
    from PIL import Image

    array = picture(H, W, BOX, channels=min(channels, 3), fg=fg, bg=30 if fg < 256 else 3000, dtype=dtype)
    if channels == 4:
        array = np.dstack([array, np.full((H, W), 255, np.uint8)])
    (tmp_path / "in").mkdir()
    Image.fromarray(array).save(tmp_path / "in" / name)
    report = _run(tmp_path / "in" / name, tmp_path / "out", save_prob=True)
    stem = name.split(".")[0]
    mask = np.array(Image.open(tmp_path / "out" / f"{stem}_mask.png"))
    _check_found(mask > 0, box_mask((H, W), BOX))
    prob = np.array(Image.open(tmp_path / "out" / f"{stem}_prob.png"))
    assert prob.shape == (H, W) and prob[BOX].mean() > 200 and prob[:, :40].mean() < 60
    overlay = np.array(Image.open(tmp_path / "out" / f"{stem}_overlay.png"))
    assert overlay.shape == (H, W, 3)
    (row,) = report.rows
    assert row["status"] == "ok" and row["foreground_px"] == int((mask > 0).sum()) and row["n_components"] == 1
    assert (row["intensity_mapped_from"] is not None) == (dtype == np.uint16)  # 16-bit mapped onto 0..255
    assert row["physical_unit"] == ""


@pytest.mark.integration
def test_nifti_volume_slice_by_slice(tmp_path):
    import nibabel as nib

    volume, expected = _volume(np.random.default_rng(0))
    data, truth = volume.transpose(2, 1, 0), expected.transpose(2, 1, 0)  # store as (i, j, k)
    affine = np.array([[0, 0.9, 0, -30.0], [-0.6, 0, 0, 12.0], [0, 0, 3.0, 7.5], [0, 0, 0, 1]])
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "in" / "ct.nii.gz")
    report = _run(tmp_path / "in", tmp_path / "out")
    result = nib.load(tmp_path / "out" / "ct_mask.nii.gz")
    assert result.shape == data.shape and result.get_data_dtype() == np.uint8
    np.testing.assert_allclose(result.affine, affine, atol=1e-6)
    assert result.header.get_zooms() == pytest.approx((0.6, 0.9, 3.0))
    _check_found(np.asarray(result.dataobj) > 0, truth)
    (row,) = report.rows
    assert row["physical_unit"] == "mm3"
    assert row["foreground_physical"] == pytest.approx(row["foreground_px"] * 0.6 * 0.9 * 3.0)


def test_nifti_2d(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(1)
    data = rng.uniform(0, 40, (W, H)).astype(np.float32)  # (i, j): i across like a picture's columns
    truth = box_mask((H, W), BOX).T
    data[truth] = 240
    affine = np.diag([0.25, 0.25, 1.0, 1.0])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "slide.nii")
    report = _run(tmp_path / "slide.nii", tmp_path / "out")
    result = nib.load(tmp_path / "out" / "slide_mask.nii.gz")
    assert result.shape == (W, H)
    np.testing.assert_allclose(result.affine, affine)
    _check_found(np.asarray(result.dataobj) > 0, truth)
    assert report.rows[0]["physical_unit"] == "mm2"


@pytest.mark.integration
def test_dicom_series_folder(tmp_path):
    import nibabel as nib

    volume, expected = _volume(np.random.default_rng(2))
    spacing, origin, row_dir, col_dir = (0.7, 0.5, 2.0), (-100.0, 50.0, 20.0), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0)
    write_dicom_series(tmp_path / "in" / "study" / "CT_series", volume, spacing, origin, row_dir, col_dir)
    report = _run(tmp_path / "in", tmp_path / "out")
    (row,) = report.rows
    assert row["status"] == "ok" and row["mask"] == "study/CT_series_mask.nii.gz"
    result = nib.load(tmp_path / "out" / "study" / "CT_series_mask.nii.gz")
    assert result.shape == (40, 30, 4)
    np.testing.assert_allclose(result.affine, dicom_ras_affine(spacing, origin, row_dir, col_dir), atol=1e-4)
    _check_found(np.asarray(result.dataobj) > 0, expected.transpose(2, 1, 0))
    assert row["spacing_mm"] == pytest.approx([0.5, 0.7, 2.0])


def test_dicom_single_file(tmp_path):
    import nibabel as nib

    volume, expected = _volume(np.random.default_rng(3), (1, 30, 40))
    (path,) = write_dicom_series(tmp_path / "in", volume, (0.4, 0.3, 1.0), (5.0, 6.0, 7.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0),
                                 names=["image.dcm"])
    _run(path, tmp_path / "out")
    result = nib.load(tmp_path / "out" / "image_mask.nii.gz")
    assert result.shape == (40, 30, 1)
    np.testing.assert_allclose(result.affine[:3, :2], dicom_ras_affine((0.4, 0.3, 1.0), (5, 6, 7), (0, 1, 0), (1, 0, 0))[:3, :2], atol=1e-5)
    np.testing.assert_allclose(result.affine[:3, 3], [-5.0, -6.0, 7.0], atol=1e-5)
    _check_found(np.asarray(result.dataobj) > 0, expected.transpose(2, 1, 0))


@pytest.mark.integration
def test_dicom_multiframe(tmp_path):
    import nibabel as nib
    import SimpleITK as sitk

    volume, expected = _volume(np.random.default_rng(4))
    image = sitk.GetImageFromArray(volume.astype(np.uint16))
    image.SetSpacing((0.5, 0.6, 1.5))
    image.SetOrigin((3.0, 4.0, 5.0))
    sitk.WriteImage(image, str(tmp_path / "mf.dcm"))
    _run(tmp_path / "mf.dcm", tmp_path / "out")
    result = nib.load(tmp_path / "out" / "mf_mask.nii.gz")
    assert result.shape == (40, 30, 4)
    assert result.header.get_zooms() == pytest.approx((0.5, 0.6, 1.5))
    np.testing.assert_allclose(result.affine[:3, 3], [-3.0, -4.0, 5.0], atol=1e-5)
    _check_found(np.asarray(result.dataobj) > 0, expected.transpose(2, 1, 0))


@pytest.mark.integration
@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_nrrd_mha(tmp_path, suffix):
    import SimpleITK as sitk

    volume, expected = _volume(np.random.default_rng(5))
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((0.8, 0.8, 2.0))
    image.SetOrigin((1.0, -2.0, 3.0))
    image.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    sitk.WriteImage(image, str(tmp_path / f"scan{suffix}"))
    _run(tmp_path / f"scan{suffix}", tmp_path / "out")
    result = sitk.ReadImage(str(tmp_path / "out" / f"scan_mask{suffix}"))
    assert result.GetSize() == (40, 30, 4) and result.GetDirection() == pytest.approx(image.GetDirection())
    assert result.GetOrigin() == pytest.approx(image.GetOrigin()) and result.GetSpacing() == pytest.approx(image.GetSpacing())
    _check_found(sitk.GetArrayFromImage(result) > 0, expected)


@pytest.mark.integration
def test_summary_json_records_settings(tmp_path):
    from PIL import Image

    Image.fromarray(picture(H, W, BOX)).save(tmp_path / "a.png")
    _run(tmp_path / "a.png", tmp_path / "out", tta=True, threshold=0.4)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["options"]["tta"] is True and summary["options"]["threshold"] == 0.4
    assert summary["training_record"]["img_size"] == [32, 32]
    assert summary["cases"][0]["status"] == "ok"
