"""``evaluate --uncertainty`` and the review threshold (issue 22): per-case scores and the risk–coverage table and
figure, ``quality.json`` written beside the checkpoint from held-out cases, reloaded by ``infer --uncertainty``,
and refused or ignored (one line why) when it does not apply."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from infer_fixtures import bright_checkpoint, shared_experiment, shared_tracking_uri, write_labelled_set

from medseg_masksup.commands import evaluate, infer
from medseg_masksup.quality.review import load_review_flag


@pytest.fixture
def model(tmp_path):
    """A private copy of the bright checkpoint: its quality.json must not reach other tests."""
    path = tmp_path / "run" / "model.pt"
    path.parent.mkdir()
    shutil.copy(bright_checkpoint(), path)
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_labelled_set(tmp_path_factory.mktemp("labelled"), n=10)


def _evaluate(model, datalist, out, *extra) -> int:
    shared_experiment()
    return evaluate.main(["--ckpt", str(model), "--datalist", str(datalist), "--output_dir", str(out), "--no_progress",
                          "--tracking_uri", shared_tracking_uri(), "--worst_cases", "0", *extra])


@pytest.mark.integration
def test_threshold_is_chosen_on_held_out_cases_stored_and_used_by_infer(model, labelled, tmp_path, capsys):
    assert _evaluate(model, labelled, tmp_path / "eval", "--uncertainty", "--uncertainty_k", "3", "--write_quality",
                     "--review_coverage", "0.8", "--quality_score", "flip_agreement") == 0
    out = capsys.readouterr().out
    assert "AURC" in out and f"review threshold written to {model.parent / 'quality.json'}" in out
    with open(tmp_path / "eval" / "per_case.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {"flip_agreement", "mask_agreement", "entropy", "pixel_variance"} <= set(rows[0])
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    table = summary["uncertainty"]["scores"]
    assert set(table) == {"flip_agreement", "mask_agreement", "entropy", "pixel_variance"}
    assert all(t["oracle"] <= t["aurc"] + 1e-12 and t["n"] == 10 for t in table.values())
    assert (tmp_path / "eval" / "risk_coverage.png").stat().st_size > 0

    flag = load_review_flag(model.parent / "quality.json")
    assert flag.score == "flip_agreement" and flag.coverage == 0.8 and flag.settings.k == 3
    assert flag.chosen_on["split"] == "validation" and flag.chosen_on["cases"] == [f"case{i}" for i in range(10)]
    assert flag.options == {"tta": False, "threshold": 0.5, "mode": "resize"}
    scores = [float(r["flip_agreement"]) for r in rows]
    assert sum(flag.review(s) for s in scores) == round(10 * (1 - flag.coverage_reached))

    # infer finds it (with the same passes, from the file) and flags exactly the cases beyond the threshold
    images = labelled.parent / "images"
    assert infer.main(["--input", str(images), "--output_dir", str(tmp_path / "inf"), "--ckpt", str(model), "--no_progress",
                       "--uncertainty"]) == 0
    err = capsys.readouterr().err
    with open(tmp_path / "inf" / "summary.csv", newline="") as fh:
        inferred = {r["case"]: r for r in csv.DictReader(fh)}
    for row in rows:  # the same input gives the same score in evaluate and infer
        assert float(inferred[row["case"]]["quality_score"]) == pytest.approx(float(row["flip_agreement"]), abs=1e-6)
        assert inferred[row["case"]]["review"] == ("yes" if flag.review(float(row["flip_agreement"])) else "no")
    flagged = sum(r["review"] == "yes" for r in inferred.values())
    assert f"note: review: {flagged} of 10 segmented cases flagged, flip_agreement < " in err


@pytest.mark.integration
def test_a_file_for_another_checkpoint_or_other_passes_gives_no_flag(model, labelled, tmp_path, capsys):
    assert _evaluate(model, labelled, tmp_path / "eval", "--uncertainty", "--uncertainty_passes", "flips",
                     "--write_quality") == 0
    images = labelled.parent / "images"
    base = ["--input", str(images), "--ckpt", str(model), "--no_progress", "--uncertainty"]
    assert infer.main([*base, "--output_dir", str(tmp_path / "k"), "--uncertainty_passes", "both"]) == 0
    assert f"no review flag: {model.parent / 'quality.json'} was chosen with passes 2 flips, seed 0, this run uses " \
           "2 flips + 8 masks (freeform, 25 %), seed 0" in capsys.readouterr().err
    assert infer.main([*base, "--output_dir", str(tmp_path / "t"), "--threshold", "0.4"]) == 0
    assert "was chosen with other inference options: threshold 0.4 (chosen with 0.5)" in capsys.readouterr().err
    with open(model, "ab") as fh:  # the checkpoint changed since (e.g. retrained into the same folder)
        fh.write(b"\0")
    assert infer.main([*base, "--output_dir", str(tmp_path / "m")]) == 0
    assert f"no review flag: {model.parent / 'quality.json'} was chosen for another model.pt (SHA-256 differs)" \
        in capsys.readouterr().err
    with open(tmp_path / "m" / "summary.csv", newline="") as fh:
        assert {r["review"] for r in csv.DictReader(fh)} == {""}


def test_a_broken_quality_file_is_one_line_naming_it(model, labelled, tmp_path, capsys):
    (model.parent / "quality.json").write_text("{not json")
    code = infer.main(["--input", str(labelled.parent / "images"), "--output_dir", str(tmp_path / "out"), "--ckpt",
                       str(model), "--no_progress", "--uncertainty"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"medseg-masksup infer: error: {model.parent / 'quality.json'}: not valid JSON")
    assert "\n" not in err and not (tmp_path / "out" / "summary.csv").exists()


@pytest.mark.parametrize("extra, message", [
    (["--write_quality"], "write_quality only apply with --uncertainty; add it"),
    (["--uncertainty", "--uncertainty_k", "0"], "uncertainty K (masked passes) must be a whole number from 1 to 64, got 0"),
    (["--uncertainty", "--write_quality", "--split", "training"],
     "--write_quality chooses the review threshold on held-out cases; split 'training' is not held out"),
    (["--uncertainty", "--uncertainty_passes", "flips", "--quality_score", "mask_agreement"],
     "quality score mask_agreement needs passes that these settings do not run (flips)"),
    (["--uncertainty", "--write_quality", "--review_coverage", "0"], "--review_coverage must lie in (0, 1], got 0.0"),
])
def test_evaluate_refuses_bad_quality_settings_in_one_line(model, labelled, tmp_path, capsys, extra, message):
    if "training" in extra:  # a datalist with a training split
        data = json.loads(labelled.read_text())
        data["training"] = data["validation"]
        labelled = labelled.with_name("with_training.json")
        labelled.write_text(json.dumps(data))
    assert _evaluate(model, labelled, tmp_path / "eval", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not (model.parent / "quality.json").exists()


@pytest.mark.integration
def test_the_least_trusted_cases_are_drawn_beside_their_maps(model, labelled, tmp_path, capsys):
    shared_experiment()
    assert evaluate.main(["--ckpt", str(model), "--datalist", str(labelled), "--output_dir", str(tmp_path / "eval"),
                          "--no_progress", "--tracking_uri", shared_tracking_uri(), "--worst_cases", "3",
                          "--uncertainty", "--uncertainty_passes", "flips", "--quality_score", "flip_agreement"]) == 0
    figure = tmp_path / "eval" / "least_trusted.png"
    assert f"least-trusted cases by flip_agreement, beside their uncertainty maps: {figure}" in capsys.readouterr().out
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["uncertainty"]["least_trusted_figure"] == "least_trusted.png"
    from PIL import Image

    with Image.open(figure) as img:  # three rows of image | map
        assert img.height > img.width
