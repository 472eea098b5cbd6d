"""``infer --uncertainty`` (issue 22): the masks are byte-identical to a plain run, an uncertainty map lies beside
each in the input's geometry (PNG heat map; NIfTI as the mask), every file is in the run's manifest, and the
summary has a quality score with an empty review flag and a one-line reason when no threshold was chosen."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from infer_fixtures import bright_checkpoint, picture

from medseg_masksup.commands import infer


@pytest.fixture
def pictures(tmp_path):
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(picture(40, 56, (slice(5 + 3 * i, 22), slice(8, 30 + 5 * i)), seed=i)).save(folder / f"c{i}.png")
    return folder


def _run(src, out, *extra) -> int:
    return infer.main(["--input", str(src), "--output_dir", str(out), "--ckpt", str(bright_checkpoint()), "--no_progress",
                       *extra])


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.integration
def test_masks_are_byte_identical_and_maps_scores_and_review_are_added(pictures, tmp_path, capsys):
    from PIL import Image

    from medseg_masksup.io.manifest import read_manifest

    assert _run(pictures, tmp_path / "plain") == 0
    assert _run(pictures, tmp_path / "unc", "--uncertainty", "--uncertainty_k", "3") == 0
    err = capsys.readouterr().err
    for i in range(3):
        assert (tmp_path / "plain" / f"c{i}_mask.png").read_bytes() == (tmp_path / "unc" / f"c{i}_mask.png").read_bytes()
        heat = Image.open(tmp_path / "unc" / f"c{i}_uncertainty.png")
        assert heat.mode == "RGB" and heat.size == (56, 40)  # width × height of the input
    assert not list((tmp_path / "plain").glob("*_uncertainty*"))
    plain_rows, rows = _rows(tmp_path / "plain" / "summary.csv"), _rows(tmp_path / "unc" / "summary.csv")
    assert "quality_score" not in plain_rows[0] and "review" not in plain_rows[0]
    assert all(0.0 <= float(r["quality_score"]) <= 1.0 and r["review"] == "" for r in rows)
    assert [r["uncertainty"] for r in rows] == [f"c{i}_uncertainty.png" for i in range(3)]
    # no quality.json beside the checkpoint: the review column stays empty, and one line says why
    reason = [line for line in err.splitlines() if "no review flag" in line]
    assert reason == [f"note: no review flag: {bright_checkpoint().parent / 'quality.json'} not found (choose a threshold "
                      "on held-out cases with 'medseg-masksup evaluate --uncertainty --write_quality')"]
    summary = json.loads((tmp_path / "unc" / "summary.json").read_text())
    assert summary["uncertainty"]["review_flag"] is None and summary["uncertainty"]["quality_score"] == "flip_agreement"
    assert summary["uncertainty"]["passes"]["k"] == 3
    assert set(summary["cases"][0]["quality"]) == {"flip_agreement", "mask_agreement", "entropy", "pixel_variance"}
    listed = {e.path for e in read_manifest(tmp_path / "unc")}
    assert {f"c{i}_uncertainty.png" for i in range(3)} <= listed and "summary.csv" in listed


@pytest.mark.integration
def test_same_input_gives_the_same_map_and_score(pictures, tmp_path):
    for out in ("a", "b"):
        assert _run(pictures, tmp_path / out, "--uncertainty", "--uncertainty_k", "2") == 0
    assert (tmp_path / "a" / "c1_uncertainty.png").read_bytes() == (tmp_path / "b" / "c1_uncertainty.png").read_bytes()
    assert [r["quality_score"] for r in _rows(tmp_path / "a" / "summary.csv")] == \
        [r["quality_score"] for r in _rows(tmp_path / "b" / "summary.csv")]


@pytest.mark.integration
def test_nifti_volume_map_is_written_in_the_mask_geometry(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    data = rng.uniform(0, 300, (40, 30, 3)).astype(np.int16)
    data[4:14, 6:16, :] = 1000
    affine = np.array([[0, 0.9, 0, -30.0], [-0.6, 0, 0, 12.0], [0, 0, 3.0, 7.5], [0, 0, 0, 1]])
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "in" / "ct.nii.gz")
    assert _run(tmp_path / "in", tmp_path / "out", "--uncertainty", "--uncertainty_passes", "flips") == 0
    mask = nib.load(tmp_path / "out" / "ct_mask.nii.gz")
    heat = nib.load(tmp_path / "out" / "ct_uncertainty.nii.gz")
    assert heat.shape == mask.shape == data.shape
    np.testing.assert_allclose(heat.affine, mask.affine, atol=1e-6)
    np.testing.assert_allclose(heat.affine, affine, atol=1e-6)
    assert heat.header.get_zooms() == pytest.approx(mask.header.get_zooms())
    assert (heat.header["qform_code"], heat.header["sform_code"]) == (mask.header["qform_code"], mask.header["sform_code"])
    values = np.asarray(heat.dataobj)
    assert heat.get_data_dtype() == np.float32 and 0.0 <= values.min() and values.max() <= 1.0
    assert values[4:14, 6:16].mean() < values.max()  # the bright object's inside is not the most uncertain


def test_uncertainty_settings_without_the_flag_and_bad_k_are_one_line(pictures, tmp_path, capsys):
    assert _run(pictures, tmp_path / "o1", "--uncertainty_k", "3") == 2
    assert capsys.readouterr().err.strip() == ("medseg-masksup infer: error: uncertainty settings (k) are only used with "
                                               "--uncertainty; add it")
    assert _run(pictures, tmp_path / "o2", "--uncertainty", "--uncertainty_k", "0") == 2
    assert capsys.readouterr().err.strip() == ("medseg-masksup infer: error: uncertainty K (masked passes) must be a whole "
                                               "number from 1 to 64, got 0")
    assert not (tmp_path / "o2" / "summary.csv").exists()


def test_an_ensemble_has_no_review_flag_and_says_so(pictures, tmp_path, capsys):
    second = tmp_path / "second" / "model.pt"
    second.parent.mkdir()
    shutil.copy(bright_checkpoint(), second)
    assert infer.main(["--input", str(pictures), "--output_dir", str(tmp_path / "out"), "--ckpt", str(bright_checkpoint()),
                       str(second), "--no_progress", "--uncertainty", "--uncertainty_passes", "flips"]) == 0
    assert "note: no review flag: a review threshold belongs to one checkpoint, not an ensemble" in capsys.readouterr().err
