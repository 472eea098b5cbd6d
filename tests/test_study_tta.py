"""``compare --tta``: a finished study gets the final checkpoint's flip-TTA evaluation added (no retraining,
nothing else touched, ``result.json`` replaced only when it is complete) and a report section comparing it."""

from __future__ import annotations

import csv
import json

import pytest

from medseg_masksup.commands.compare import main as compare
from medseg_masksup.study.plan import StudyPlan
from medseg_masksup.study.report import write_study_report
from medseg_masksup.study.runner import RESULT_FILE, run_one
from study_fixtures import (check_evaluation_added, check_kept_once_asked, check_missing_checkpoint, fake_run,
                            tagged_evaluations)

RUNS = ("baseline-s0-f0", "masksup-s0-f0")


@pytest.mark.integration
def test_tta_is_added_to_a_finished_study_without_retraining(tiny_study, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study  # a copy of the session's study, trained and evaluated without TTA
    results = check_evaluation_added(compare, study, args, capsys, "--tta", "final-tta")  # no retraining
    for key, result in results.items():
        assert (study / "runs" / key / "eval-final-tta" / "per_case.csv").is_file()
        tta = result["eval"]["final-tta"]
        assert tta["split"] == result["eval"]["final"]["split"] and tta["metrics"]["dice"]["n"] == 2
        summary = json.loads((study / "runs" / key / "eval-final-tta" / "summary.json").read_text())
        assert summary["options"]["tta"] is True and summary["checkpoint"].endswith("last.pt")
    assert json.loads((study / "study.json").read_text())["tta"] is True

    text = (study / "report" / "summary.md").read_text()
    assert "| baseline | final + TTA | 1 | 2 |" in text and "| masksup | final + TTA | 1 | 2 |" in text
    assert "| arm: TTA − no TTA |" in text and "| masksup | final + TTA | 1 | 2 |" in text.split("TTA − no TTA")[1]
    with open(study / "report" / "tta.csv", newline="") as fh:
        assert [row["arm"] for row in csv.DictReader(fh)] == ["baseline", "masksup"]

    assert tagged_evaluations(study, "tta") == [f"evaluate-{key}-final-tta" for key in RUNS]
    check_kept_once_asked(compare, study, args, capsys, "final + TTA")  # the study keeps TTA


def test_interrupted_tta_evaluation_leaves_result_json_as_it_was(tiny_study, monkeypatch):
    import medseg_masksup.inference.evaluation as evaluation

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, _ = tiny_study
    plan = StudyPlan.load(study / "study.json")
    plan.tta = True
    spec = next(s for s in plan.runs() if s.key == RUNS[0])
    result_file = study / "runs" / RUNS[0] / RESULT_FILE
    saved = result_file.read_bytes()

    def interrupted(*args, **kwargs):  # the evaluation wrote its tables, then is stopped while logging to MLflow
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation, "log_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_one(plan, spec, study)
    assert (study / "runs" / RUNS[0] / "eval-final-tta" / "per_case.csv").is_file()
    assert result_file.read_bytes() == saved
    assert not list(result_file.parent.glob(f".{RESULT_FILE}*"))

    monkeypatch.undo()
    assert "final-tta" in run_one(plan, spec, study)["eval"]
    assert "final-tta" in json.loads(result_file.read_text())["eval"]


def test_report_compares_tta_only_when_every_run_has_it(tmp_path):
    dice = [0.6, 0.7, 0.75, 0.8, 0.82, 0.85]
    gain = 0.05
    evaluations = {"best": dice, "final": dice, "final-tta": [d + gain for d in dice]}
    results = [fake_run(tmp_path, "baseline", evaluations), fake_run(tmp_path, "masksup", evaluations)]

    paths = write_study_report(results, tmp_path / "report")
    text = paths["summary_md"].read_text()
    assert "| baseline | final + TTA | 1 | 6 |" in text
    with open(paths["tta_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["arm"] for r in rows] == ["baseline", "masksup"]
    for row in rows:
        assert float(row["dice_diff"]) == pytest.approx(gain, abs=1e-5)
        assert int(row["dice_wins"]) == len(dice) and int(row["dice_losses"]) == 0 and float(row["dice_ci_low"]) > 0

    del results[1]["eval"]["final-tta"]
    text = write_study_report(results, tmp_path / "report2")["summary_md"].read_text()
    assert "| final + TTA |" not in text and "TTA − no TTA" not in text
    assert "still without: masksup-s0-f0" in text
    assert not (tmp_path / "report2" / "tta.csv").exists()


@pytest.mark.integration
def test_tta_on_a_run_without_its_checkpoint_names_the_file_and_keeps_the_result(tiny_study, capfd, monkeypatch):
    """A committed study folder has no weights: ``--tta`` says which checkpoint is missing, fails the run
    (exit 1) and leaves its ``result.json`` as it was."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    check_missing_checkpoint(compare, *tiny_study, capfd, "--tta", "final-tta")
