"""Evaluation: metrics against hand-computed values, datalist splits, the per-case table and MLflow."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from infer_fixtures import bright_checkpoint, shared_experiment, shared_tracking_uri, write_labelled_set

from medseg_masksup.commands import evaluate as evaluate_cmd
from medseg_masksup.data.datalist import load_items
from medseg_masksup.inference.evaluation import case_metrics, default_tracking_uri, evaluate_checkpoint, hd95_unit, summarise
from medseg_masksup.tracking.backbone_model import using_tracking_uri
from medseg_masksup.inference.worst_cases import WorstCases
from medseg_masksup.io import UserError
from medseg_masksup.record import TrainingRecord


def _rect(rows: slice, cols: slice, shape=(16, 20)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


# Label: 4 × 4 square; prediction: the same square extended 4 px to the right (4 × 8).
# TP = 16, FP = 16, FN = 0 → Dice = 32/48, IoU = 16/32, precision = 16/32, recall = 1.
# Boundary distances (pixels): prediction → label: 10 boundary pixels on the label's boundary (0),
# the extension's top/bottom rows 1, 2, 3, 4 and its right column 4, 4 → sorted 20 values, 95th
# percentile 4; label → prediction: 10 × 0 and 2 × 1 → 1. HD95 = max = 4 px.
LABEL = _rect(slice(4, 8), slice(4, 8))
PRED = _rect(slice(4, 8), slice(4, 12))


def test_metrics_match_hand_computed_values():
    m = case_metrics(PRED, LABEL)
    assert m["dice"] == pytest.approx(2 / 3) and m["iou"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(1.0)
    assert m["hd95"] == pytest.approx(4.0)
    swapped = case_metrics(LABEL, PRED)
    assert swapped["precision"] == pytest.approx(1.0) and swapped["recall"] == pytest.approx(0.5)
    assert swapped["hd95"] == pytest.approx(4.0)  # symmetric


def test_hd95_uses_spacing_per_axis():
    # the 4-px extension runs along axis 1: at 2 mm per column the farthest boundary pixels are 8 mm off;
    # at 0.5 mm per column 2 mm (label → prediction: 1 row = 2 mm or 3 columns = 1.5 mm → 1.5)
    assert case_metrics(PRED, LABEL, spacing=(0.5, 2.0))["hd95"] == pytest.approx(8.0)
    assert case_metrics(PRED, LABEL, spacing=(2.0, 0.5))["hd95"] == pytest.approx(2.0)
    assert case_metrics(PRED, LABEL, spacing=(0.5, 0.5, 3.0))["hd95"] == pytest.approx(2.0)  # extra axis ignored


def test_empty_mask_conventions():
    empty = np.zeros((16, 20), bool)
    assert case_metrics(empty, empty) == {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "precision": 1.0, "recall": 1.0}
    missed = case_metrics(empty, LABEL)
    assert missed["dice"] == 0.0 and missed["recall"] == 0.0 and math.isnan(missed["hd95"]) and math.isnan(missed["precision"])
    false_alarm = case_metrics(LABEL, empty)
    assert false_alarm["dice"] == 0.0 and false_alarm["precision"] == 0.0 and math.isnan(false_alarm["recall"])


def test_summary_is_mean_and_population_std_over_defined_values():
    rows = [{"dice": 0.5, "hd95": math.nan}, {"dice": 1.0, "hd95": 2.0}, {"dice": 0.0, "hd95": 4.0}]
    s = summarise(rows, ("dice", "hd95"))
    assert s["dice"] == pytest.approx({"mean": 0.5, "std": math.sqrt(1 / 6), "n": 3, "median": 0.5, "q1": 0.25, "q3": 0.75, "iqr": 0.5})
    assert s["hd95"] == pytest.approx({"mean": 3.0, "std": 1.0, "n": 2, "median": 3.0, "q1": 2.5, "q3": 3.5, "iqr": 1.0})


def test_median_and_iqr_resist_one_outlier():
    rows = [{"hd95": v} for v in (1.0, 2.0, 3.0, 4.0, 400.0)]
    s = summarise(rows, ("hd95",))["hd95"]
    assert s["mean"] > 80 and s["median"] == 3.0 and s["iqr"] == 2.0


def test_hd95_unit_is_stated_and_mixed_units_are_flagged():
    assert hd95_unit([{"hd95_unit": "mm"}, {"hd95_unit": "mm"}]) == "mm"
    assert hd95_unit([{"hd95_unit": "px"}]) == "px"
    assert hd95_unit([{"hd95_unit": "mm"}, {"hd95_unit": "px"}]) == "mm/px (mixed)"


@pytest.mark.integration
def test_worst_cases_keeps_the_lowest_dice_and_draws_them(tmp_path):
    worst = WorstCases(2)
    image = np.zeros((3, 12, 10), np.float32)
    mask = np.zeros((12, 10), bool)
    mask[2:5, 3:6] = True
    for name, dice in (("a", 0.9), ("b", 0.1), ("c", float("nan")), ("d", 0.5), ("e", 0.95)):
        worst.add(name, dice, image, mask, ~mask)
    assert [(d, n) for d, n, *_ in worst.kept] == [(0.1, "b"), (0.5, "d")]
    paths = worst.write(tmp_path, prefix="worst")
    assert [p.name for p in paths] == ["worst_1_b.png", "worst_2_d.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    volume = WorstCases(1)
    volume.add("vol/1", 0.2, np.zeros((1, 8, 8, 5), np.float32), np.ones((8, 8, 5), bool), np.zeros((8, 8, 5), bool))
    assert [p.name for p in volume.write(tmp_path / "v")] == ["worst_1_vol_1.png"]


def test_split_choice(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.png").write_bytes(b"x")
    record = TrainingRecord(val_fold=1)
    training = [{"image": "a.png", "label": "b.png", "fold": 0}, {"image": "b.png", "label": "c.png", "fold": 1}]
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": training, "validation": [], "test": [{"image": "c.png"}]}))
    items, split = load_items(path, "auto", record.val_fold)  # test has no labels, validation is empty: held-out fold
    assert split == "heldout-fold1" and items[0]["image"] == str(tmp_path / "b.png")
    path.write_text(json.dumps({"training": training, "validation": [{"image": "a.png", "label": "c.png"}],
                                "test": [{"image": "c.png", "label": "a.png"}]}))
    assert load_items(path, "auto", record.val_fold)[1] == "test"
    assert load_items(path, "validation", record.val_fold)[0][0]["label"] == str(tmp_path / "c.png")
    assert len(load_items(path, "all", record.val_fold)[0]) == 4
    path.write_text(json.dumps({"validation": [{"image": "a.png", "label": "missing.png"}]}))
    with pytest.raises(UserError, match=f"datalist {path}: label file not found: {tmp_path / 'missing.png'}"):
        load_items(path, "validation", record.val_fold)
    with pytest.raises(UserError, match=f"datalist {path}: split 'test' has no items"):
        load_items(path, "test", record.val_fold)


def test_default_store_is_beside_the_outputs(tmp_path):
    assert default_tracking_uri(tmp_path, None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert default_tracking_uri(tmp_path, "sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.integration
def test_evaluate_checkpoint_end_to_end(tmp_path):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    datalist = write_labelled_set(tmp_path / "data", n=4)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "data" / "labels" / "case3.png")  # wrong size
    uri = shared_tracking_uri()
    client = MlflowClient(uri)
    experiment_id = shared_experiment("masksup-bright-test")
    training_run = client.create_run(experiment_id, run_name="masksup").info.run_id
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "model.pt").write_bytes(bright_checkpoint().read_bytes())
    (run_dir / "training_record.json").write_text(json.dumps({"mlflow_run_id": training_run}))

    report = evaluate_checkpoint(run_dir, datalist, tmp_path / "eval", tracking_uri=uri, progress=False, verbose=False)
    assert report.split == "validation"
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_case.csv")))
    assert [r["case"] for r in rows] == ["case0", "case1", "case2", "case3"]
    assert rows[3]["status"] == "error"
    assert rows[3]["message"] == f"{tmp_path / 'data' / 'labels' / 'case3.png'}: label shape (10, 10) does not match image shape (48, 40)"
    dices = [float(r["dice"]) for r in rows[:3]]
    assert min(dices) > 0.8  # bright boxes are found
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["metrics"]["dice"]["n"] == 3
    assert summary["metrics"]["dice"]["mean"] == pytest.approx(np.mean(dices), abs=1e-5)
    assert summary["metrics"]["dice"]["std"] == pytest.approx(np.std(dices), abs=1e-5)
    run = client.get_run(report.mlflow_run_id)
    assert run.info.experiment_id == experiment_id and run.info.status == "FINISHED"
    assert run.data.tags["training_run_id"] == training_run and run.data.tags["mlflow.parentRunId"] == training_run
    assert run.data.params["training_run_id"] == training_run and run.data.params["img_size"] == "[32, 32]"
    assert run.data.metrics["eval_dice_mean"] == pytest.approx(summary["metrics"]["dice"]["mean"])
    assert run.data.metrics["eval_dice_median"] == pytest.approx(float(np.median(dices)), abs=1e-5)
    assert run.data.params["hd95_unit"] == summary["units"]["hd95"] == "px"  # PNGs have no spacing
    # per-case values are a table, not a metric over "step = case index"
    assert not [k for k in run.data.metrics if k.startswith("case_")]
    artifacts = {a.path for a in client.list_artifacts(report.mlflow_run_id)}
    assert {"per_case.json", "per_case.csv", "summary.json"} <= artifacts
    with using_tracking_uri(uri):  # load_table searches runs through MLflow's fluent API
        table = client.load_table(experiment_id, "per_case.json", run_ids=[report.mlflow_run_id])
    assert list(table["case"]) == ["case0", "case1", "case2", "case3"]
    # the worst cases (lowest Dice first) as overlay images, in the folder and in the run
    worst = sorted(rows[:3], key=lambda r: float(r["dice"]))
    assert summary["worst_cases"] == [f"worst_{i}_{r['case']}.png" for i, r in enumerate(worst, start=1)]
    assert set(summary["worst_cases"]) <= artifacts
    assert all((tmp_path / "eval" / "worst_cases" / name).is_file() for name in summary["worst_cases"])
    screen = "\n".join(report.lines())
    assert "hd95 (px)" in screen and "median" in screen and "IQR" in screen


@pytest.mark.integration
def test_evaluate_bundle_and_command_errors(tmp_path, capsys):
    from monai.bundle.scripts import run

    datalist = write_labelled_set(tmp_path / "data", n=2)
    run(config_file="bundles/masksup/evaluate.json", ckpt=str(bright_checkpoint()), datalist=str(datalist),
        output_dir=str(tmp_path / "eval"), tracking_uri=shared_tracking_uri(), progress=False)
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_case.csv")))
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    capsys.readouterr()
    code = evaluate_cmd.main(["--ckpt", str(bright_checkpoint()), "--datalist", str(tmp_path / "none.json")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"medseg-masksup evaluate: error: datalist not found: {tmp_path / 'none.json'}"


@pytest.mark.integration
def test_evaluate_bundle_scores_uncertainty_as_the_command_does(tmp_path):
    """evaluate.json carries the --uncertainty options (issue 22) to the same evaluate_checkpoint."""
    from monai.bundle.scripts import run

    datalist = write_labelled_set(tmp_path / "data", n=3)
    run(config_file="bundles/masksup/evaluate.json", ckpt=str(bright_checkpoint()), datalist=str(datalist),
        output_dir=str(tmp_path / "eval"), tracking_uri=shared_tracking_uri(), progress=False, worst_cases=0,
        uncertainty=True, uncertainty_passes="masks", uncertainty_k=2, quality_score="mask_agreement")
    rows = list(csv.DictReader(open(tmp_path / "eval" / "per_case.csv")))
    assert {"mask_agreement", "entropy", "pixel_variance"} <= set(rows[0]) and "flip_agreement" not in rows[0]
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["uncertainty"]["passes"]["k"] == 2 and summary["uncertainty"]["passes"]["passes"] == "masks"
