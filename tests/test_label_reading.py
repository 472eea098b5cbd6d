"""A mask means the same in training and in scoring (issue 19, one reading stack).

A label file is read with its stored values (``Image2DReader(label=True)``: palette indices, instance ids) and
binarised by one rule (:func:`medseg_masksup.io.labels.binarise_label`, ``first channel > label_threshold``) in
training's preprocessing, ``evaluate``, robustness and the study report. Before, ``evaluate`` read a palette mask
as RGB and thresholded its red channel: a pure-green foreground was background there. A label holding NaN / inf
values is refused (datalist check, evaluate), naming the file and the count.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from infer_fixtures import bright_checkpoint, box_mask, picture, shared_tracking_uri, write_labelled_set
from PIL import Image

from medseg_masksup.data.datalist import DatalistError, load_split
from medseg_masksup.data.preprocessing import training_preprocessing, validation_preprocessing
from medseg_masksup.errors import InputError, UserError, error_chain
from medseg_masksup.inference.evaluation import evaluate_checkpoint
from medseg_masksup.inference.robustness import run_robustness
from medseg_masksup.io import read_label
from medseg_masksup.record import TrainingRecord

H, W = 40, 48
BOX = (slice(10, 26), slice(12, 30))
GREEN = (0, 255, 0)


def _palette_mask(path, mask: np.ndarray, colour=GREEN) -> None:
    """``mask`` as a palette PNG: index 0 black, index 1 ``colour``."""
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, *colour] + [0, 0, 0] * 254)
    image.save(path)


def _pair(tmp_path, colour=GREEN) -> dict:
    Image.fromarray(picture(H, W, BOX)).save(tmp_path / "image.png")
    _palette_mask(tmp_path / "mask.png", box_mask((H, W), BOX), colour)
    return {"image": str(tmp_path / "image.png"), "label": str(tmp_path / "mask.png")}


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_a_green_palette_mask_is_the_same_foreground_in_validation_and_evaluate(tmp_path, threshold):
    item = _pair(tmp_path)
    record = TrainingRecord(img_size=[32, 32], label_threshold=threshold)
    validated = np.asarray(validation_preprocessing(record)(dict(item))["label"])
    assert validated.shape == (1, W, H)  # MONAI's (C, W, H)
    np.testing.assert_array_equal(validated[0].astype(bool), box_mask((H, W), BOX).T)  # index 1 is foreground
    np.testing.assert_array_equal(read_label(item["label"], threshold), validated[0].astype(bool))  # was all False


def test_a_nifti_label_is_read_as_before(tmp_path):
    import nibabel as nib

    labels = np.zeros((W, H), np.int16)
    labels[BOX[1], BOX[0]] = 3  # an instance id
    labels[0, 0] = 1
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "label.nii.gz")
    np.testing.assert_array_equal(read_label(tmp_path / "label.nii.gz", 0.0), labels > 0)
    np.testing.assert_array_equal(read_label(tmp_path / "label.nii.gz", 2.0), labels > 2)


@pytest.mark.integration
def test_evaluate_scores_green_palette_labels_as_training_reads_them(tmp_path):
    datalist = write_labelled_set(tmp_path / "data", n=3)
    truths = {}
    for label in sorted((tmp_path / "data" / "labels").glob("*.png")):
        truths[label.stem] = np.array(Image.open(label)) > 0
        _palette_mask(label, truths[label.stem])
    report = evaluate_checkpoint(bright_checkpoint(), datalist, tmp_path / "eval", tracking_uri=shared_tracking_uri(),
                                 progress=False, verbose=False, worst_cases=0)
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_case.csv")))
    assert [r["status"] for r in rows] == ["ok"] * 3, [r["message"] for r in rows]
    for row in rows:
        assert int(row["label_px"]) == int(truths[row["case"]].sum())  # was 0: green has no red
        assert float(row["dice"]) > 0.8, row  # the bright boxes are found, and now scored as found
    assert report.summary["dice"]["n"] == 3


def _nan_label(path, nan_pixels: int) -> None:
    """A float TIFF 0/1 box mask whose first ``nan_pixels`` values are NaN (the last one +inf)."""
    mask = box_mask((H, W), BOX).astype(np.float32)
    mask.reshape(-1)[:nan_pixels] = np.nan
    mask.reshape(-1)[-1] = np.inf
    Image.fromarray(mask).save(path)


def test_the_datalist_check_refuses_a_label_with_nan_before_training(tmp_path):
    Image.fromarray(picture(H, W, BOX)).save(tmp_path / "image.png")
    _nan_label(tmp_path / "mask.tif", nan_pixels=4)
    datalist = tmp_path / "datalist.json"
    pair = {"image": "image.png", "label": "mask.tif"}
    datalist.write_text(json.dumps({"training": [pair], "validation": [pair]}))
    with pytest.raises(DatalistError) as err:
        load_split(str(datalist))
    assert str(err.value) == (f"datalist {datalist}: mask {tmp_path / 'mask.tif'}: 5 of {H * W} label values are not "
                              "finite (NaN/inf); a mask must hold finite values (0/1, 0/255 or class ids)")


def test_training_preprocessing_and_robustness_refuse_a_label_with_nan(tmp_path):
    """Robustness prepares its cases with training's preprocessing: the same refusal, naming the file."""
    Image.fromarray(picture(H, W, BOX)).save(tmp_path / "image.png")
    _nan_label(tmp_path / "mask.tif", nan_pixels=2)
    note = f"3 of {H * W} label values are not finite (NaN/inf); a mask must hold finite values (0/1, 0/255 or class ids)"
    item = {"image": str(tmp_path / "image.png"), "label": str(tmp_path / "mask.tif")}
    with pytest.raises(Exception) as err:  # MONAI wraps transform errors; the cause is ours
        training_preprocessing(TrainingRecord(img_size=[32, 32]))(item)
    cause = list(error_chain(err.value))[-1]
    assert isinstance(cause, InputError) and str(cause) == f"label {tmp_path / 'mask.tif'}: {note}"
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": [], "validation": [item], "test": []}))
    with pytest.raises(UserError) as err:
        run_robustness(bright_checkpoint(), datalist, tmp_path / "rob", ratios=[0], progress=False, verbose=False)
    assert str(err.value) == (f"datalist {datalist}: an item could not be loaded "
                              f"(label {tmp_path / 'mask.tif'}: {note})")  # was "(applying transform <...>)"
    assert not (tmp_path / "rob").exists()


def test_evaluate_names_a_label_with_nan(tmp_path):
    datalist = write_labelled_set(tmp_path / "data", n=2)
    bad = tmp_path / "data" / "labels" / "case1.tif"
    _nan_label(bad, nan_pixels=3)
    items = json.loads(datalist.read_text())
    items["validation"][1]["label"] = "labels/case1.tif"
    datalist.write_text(json.dumps(items))
    with pytest.raises(InputError, match="case1.tif: 4 of"):
        read_label(bad, 0.0)
    evaluate_checkpoint(bright_checkpoint(), datalist, tmp_path / "eval", tracking_uri=shared_tracking_uri(),
                        progress=False, verbose=False, worst_cases=0)
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_case.csv")))
    assert [r["status"] for r in rows] == ["ok", "error"]
    assert rows[1]["message"] == (f"{bad}: 4 of {H * W} label values are not finite (NaN/inf); a mask must hold "
                                  "finite values (0/1, 0/255 or class ids)")
