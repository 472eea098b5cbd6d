"""Issue 20 item 2: NaN / inf pixels are never a silent blank. One rule (medseg_masksup.io.intensity):
NaN and -inf become the image's smallest finite value, +inf its largest, counted and reported; an image
without a finite value is an error naming the file. The same in training (datalist check) and inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from infer_fixtures import box_mask, bright_checkpoint, dice, picture
from PIL import Image

from medseg_masksup.data.datalist import DatalistError, load_split
from medseg_masksup.io.intensity import NonFiniteImageError, fill_nonfinite
from medseg_masksup.data.preprocessing import training_preprocessing
from medseg_masksup.inference.folder import run_folder
from medseg_masksup.record import TrainingRecord

H, W = 48, 80
BOX = (slice(8, 24), slice(50, 70))


def _run(src, out):
    return run_folder(src, out, bright_checkpoint(), progress=False, verbose=False)


def test_the_rule_replaces_and_counts():
    array = np.array([[np.nan, 1.0, -np.inf], [5.0, np.inf, 3.0]], np.float32)
    assert fill_nonfinite(array) == 3
    np.testing.assert_array_equal(array, [[1.0, 1.0, 1.0], [5.0, 5.0, 3.0]])
    assert fill_nonfinite(np.array([1, 2], np.uint8)) == 0
    with pytest.raises(NonFiniteImageError, match=r"no finite pixel value \(all 4 are NaN or infinite\)"):
        fill_nonfinite(np.full((2, 2), np.nan, np.float32))


def _float_tiff(path, nan_pixels: int = 0):
    image = picture(H, W, BOX, channels=1, dtype=np.float32)
    image.reshape(-1)[:nan_pixels] = np.nan  # the first row: background
    Image.fromarray(image).save(path)
    return path


def test_float_tiff_with_nan_is_segmented_and_the_count_reported(tmp_path):
    src = _float_tiff(tmp_path / "scan.tif", nan_pixels=7)
    report = _run(src, tmp_path / "out")
    (row,) = report.rows
    assert row["status"] == "ok" and row["nonfinite_values"] == 7
    assert row["message"] == (f"{src}: 7 of {H * W} pixel values are not finite (NaN/inf); set to the image's "
                              "smallest finite value (NaN, -inf) or largest (+inf)")
    assert f"warning: {row['message']}" in report.lines()
    assert row["intensity_mapped_from"] is None  # finite values in range: not min-max mapped (was "nanxnan")
    mask = np.array(Image.open(tmp_path / "out" / "scan_mask.png")) > 0
    assert dice(mask, box_mask((H, W), BOX)) > 0.75  # was an all-background mask


def _ct(nan_slices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """CT-like float volume ``(z, y, x)`` with a bright square per slice, ``nan_slices`` all NaN; and the squares."""
    rng = np.random.default_rng(0)
    volume = rng.uniform(0, 300, (4, 30, 40)).astype(np.float32)
    truth = np.zeros(volume.shape, bool)
    for k in range(4):
        truth[k, 6:16, 4 + 7 * k : 14 + 7 * k] = True
    volume[truth] = 1000
    volume[nan_slices] = np.nan
    return volume, truth


def test_nifti_volume_with_one_nan_slice_differs_from_an_all_nan_volume(tmp_path):
    import nibabel as nib

    (tmp_path / "in").mkdir()
    volume, truth = _ct([2])
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.eye(4)), tmp_path / "in" / "one_nan_slice.nii.gz")
    nib.save(nib.Nifti1Image(_ct([0, 1, 2, 3])[0].transpose(2, 1, 0), np.eye(4)), tmp_path / "in" / "all_nan.nii.gz")
    report = _run(tmp_path / "in", tmp_path / "out")
    rows = {row["case"]: row for row in report.rows}
    one, every = rows["one_nan_slice"], rows["all_nan"]
    assert one["status"] == "ok" and one["nonfinite_values"] == 30 * 40
    assert "1200 of 4800 pixel values are not finite" in one["message"]
    mask = np.asarray(nib.load(tmp_path / "out" / "one_nan_slice_mask.nii.gz").dataobj).transpose(2, 1, 0) > 0
    for k in (0, 1, 3):  # found on every finite slice (the NaN slice used to blank the whole volume)
        assert dice(mask[k], truth[k]) > 0.75, k
    assert every["status"] == "error"
    assert every["message"] == (f"{tmp_path / 'in' / 'all_nan.nii.gz'}: no finite pixel value (all 4800 are NaN "
                                "or infinite); nothing to segment")
    assert not (tmp_path / "out" / "all_nan_mask.nii.gz").exists()


def _datalist(tmp_path, image_name: str) -> str:
    Image.fromarray(np.zeros((H, W), np.uint8)).save(tmp_path / "mask.png")
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": [{"image": image_name, "label": "mask.png"}],
                                "validation": [{"image": image_name, "label": "mask.png"}]}))
    return str(path)


def test_training_check_names_a_file_with_nan_and_preprocesses_it_as_inference_does(tmp_path, capsys):
    src = _float_tiff(tmp_path / "scan.tif", nan_pixels=5)
    datalist = _datalist(tmp_path, "scan.tif")
    load_split(datalist)
    load_split(datalist)  # checked twice per training (settings check, then the split): warned once
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: datalist {datalist}: image {src}: 5 of {H * W} pixel values are not finite (NaN/inf); "
                   "set to the image's smallest finite value (NaN, -inf) or largest (+inf)"]
    out = training_preprocessing(TrainingRecord(img_size=[32, 32]))({"image": str(src), "label": str(tmp_path / "mask.png")})
    assert bool(torch.isfinite(out["image"]).all()) and float(out["image"].max()) > 0.5  # not a blank


def test_training_check_refuses_an_image_without_finite_values(tmp_path):
    Image.fromarray(np.full((H, W), np.inf, np.float32)).save(tmp_path / "void.tif")
    datalist = _datalist(tmp_path, "void.tif")
    with pytest.raises(DatalistError) as err:
        load_split(datalist)
    assert str(err.value) == (f"datalist {datalist}: image {tmp_path / 'void.tif'} has no finite pixel value "
                              f"(all {H * W} are NaN or infinite)")
