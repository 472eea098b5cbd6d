"""``compare --keep_largest``: nnU-Net's post-processing (keep only the largest connected component) scored on
the held-out cases of every run, added to a finished study without retraining, and chosen per arm by the
cross-validation (kept where it raises the mean Dice)."""

from __future__ import annotations

import csv
import json

import pytest

from medseg_masksup.commands.compare import main as compare
from medseg_masksup.study.report import write_study_report
from medseg_masksup.study.runner import RESULT_FILE
from study_fixtures import fake_run

RUNS = ("baseline-s0-f0", "masksup-s0-f0")


def test_report_chooses_the_largest_component_per_arm_where_the_mean_dice_rises(tmp_path):
    dice = [0.6, 0.7, 0.75, 0.8, 0.82, 0.85]
    helped = [d + 0.03 for d in dice]
    hurt = [d - 0.02 for d in dice[:-1]] + [dice[-1] + 0.01]  # mostly worse: the mean falls
    results = [fake_run(tmp_path, "baseline", {"best": dice, "final": dice, "final-largest": hurt}),
               fake_run(tmp_path, "masksup", {"best": dice, "final": dice, "final-largest": helped})]

    paths = write_study_report(results, tmp_path / "report")
    text = paths["summary_md"].read_text()
    assert "| baseline | final + largest component | 1 | 6 |" in text
    table = text.split("| arm: largest component − none |")[1]
    assert table.splitlines()[2].startswith("| baseline | final + largest component | 1 | 6 | -0.0150")
    assert table.splitlines()[2].endswith("| no |") and table.splitlines()[3].endswith("| yes |")
    assert "keep only the largest component for masksup (`infer --keep_largest`); no post-processing for baseline" in text
    assert "| chosen by CV |" in text and "Post-processing chosen by the held-out cases" in text
    with open(paths["postprocessing_csv"], newline="") as fh:
        assert [(r["arm"], r["chosen"]) for r in csv.DictReader(fh)] == [("baseline", "False"), ("masksup", "True")]
    record = json.loads(paths["postprocessing_json"].read_text())
    assert record["masksup"]["final"]["keep_largest"] is True and record["baseline"]["final"]["keep_largest"] is False
    assert record["masksup"]["final"]["cases"] == 6 and record["masksup"]["final"]["dice_ci"][0] > 0

    del results[0]["eval"]["final-largest"]  # one run lacks it: no choice from an incomplete comparison
    text = write_study_report(results, tmp_path / "report2")["summary_md"].read_text()
    assert "largest component − none" not in text and "still without: baseline-s0-f0" in text
    assert not (tmp_path / "report2" / "postprocessing.json").exists()


def test_a_choice_made_without_cross_validation_is_called_optimistic(tmp_path):
    """A train/val study (Kvasir) chooses on the very cases it then scores: the report must not call that CV."""
    dice = [0.6, 0.7, 0.8]
    results = [fake_run(tmp_path, "baseline", {"best": dice, "final": dice, "final-largest": [d + 0.01 for d in dice]},
                        split="validation")]
    paths = write_study_report(results, tmp_path / "report")
    text = paths["summary_md"].read_text()
    assert "| chosen on these cases |" in text and "chosen by CV" not in text
    assert "chosen on the same validation cases it is scored on" in text and "optimistic" in text
    assert json.loads(paths["postprocessing_json"].read_text())["chosen_on"] == "validation"


def test_report_makes_the_choice_with_tta_as_well_when_the_study_has_both(tmp_path):
    dice = [0.6, 0.7, 0.8]
    evaluations = {"best": dice, "final": dice, "final-tta": dice, "final-largest": [d + 0.01 for d in dice],
                   "final-tta-largest": [d - 0.01 for d in dice]}
    record = json.loads(write_study_report([fake_run(tmp_path, "baseline", evaluations)],
                                           tmp_path / "report")["postprocessing_json"].read_text())
    assert record["baseline"]["final"]["keep_largest"] is True
    assert record["baseline"]["final-tta"]["keep_largest"] is False


@pytest.mark.integration
def test_keep_largest_is_added_to_a_finished_study_without_retraining(tiny_study, capsys, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study
    last = {key: (study / json.loads((study / "runs" / key / RESULT_FILE).read_text())["checkpoints"]["final"]).read_bytes()
            for key in RUNS}
    capsys.readouterr()

    assert compare([*args, "--keep_largest"]) == 0
    out = capsys.readouterr().out
    assert "2 runs, 2 already done, 2 of them to complete (final-largest evaluation), 0 to run" in out
    assert "done  baseline-s0-f0 in" in out and ", largest 0." in out.split("done  baseline-s0-f0")[1].splitlines()[0]
    for key in RUNS:
        result = json.loads((study / "runs" / key / RESULT_FILE).read_text())
        assert set(result["eval"]) == {"best", "final", "final-largest"}
        assert result["eval"]["final-largest"]["per_case_csv"] == f"runs/{key}/eval-final-largest/per_case.csv"
        summary = json.loads((study / "runs" / key / "eval-final-largest" / "summary.json").read_text())
        assert summary["options"]["keep_largest"] is True and summary["options"]["tta"] is False
        assert (study / result["checkpoints"]["final"]).read_bytes() == last[key]  # nothing retrained
    assert json.loads((study / "study.json").read_text())["keep_largest"] is True
    assert (study / "report" / "postprocessing.json").is_file()
    assert "| arm: largest component − none |" in (study / "report" / "summary.md").read_text()

    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.keep_largest = 'true'")
    assert sorted(r.info.run_name for r in runs) == [f"evaluate-{key}-final-largest" for key in RUNS]


def test_tta_and_the_largest_component_together_add_both_combinations():
    from medseg_masksup.study.plan import StudyPlan
    from medseg_masksup.study.runner import EVALUATIONS, planned_evaluations

    def plan(**flags):
        return StudyPlan(name="s", datalist="d.json", epochs=1, **flags)

    assert planned_evaluations(plan()) == ["best", "final"]
    assert planned_evaluations(plan(keep_largest=True)) == ["best", "final", "final-largest"]
    both = planned_evaluations(plan(tta=True, keep_largest=True))
    assert both == ["best", "final", "final-tta", "final-largest", "final-tta-largest"]
    assert EVALUATIONS["final-tta-largest"].tta and EVALUATIONS["final-tta-largest"].keep_largest


def test_infer_and_evaluate_apply_the_choice_a_study_made(tmp_path):
    """``--postprocessing report/postprocessing.json ARM`` turns the study's choice for that arm into the
    inference options (nnU-Net's apply-post-processing step); a wrong arm, file or combination is refused."""
    import pytest

    from medseg_masksup.commands.evaluate import build_parser as evaluate_parser
    from medseg_masksup.commands.infer import build_parser as infer_parser
    from medseg_masksup.errors import UserError
    from medseg_masksup.inference.options import options_from_args

    (tmp_path / "other.json").write_text("{}")
    dice = [0.6, 0.7, 0.8]
    results = [fake_run(tmp_path, "baseline", {"best": dice, "final": dice, "final-largest": [d - 0.01 for d in dice]}),
               fake_run(tmp_path, "masksup", {"best": dice, "final": dice, "final-largest": [d + 0.01 for d in dice]})]
    choice = str(write_study_report(results, tmp_path / "report")["postprocessing_json"])

    def options(*extra, parser=infer_parser):
        base = ["--input", "in", "--output_dir", "out"] if parser is infer_parser else ["--datalist", "d.json"]
        return options_from_args(parser().parse_args([*base, "--ckpt", "m.pt", *extra]))

    assert options("--postprocessing", choice, "masksup").keep_largest is True
    assert options("--postprocessing", choice, "baseline").keep_largest is False
    assert options("--postprocessing", choice, "masksup", parser=evaluate_parser).keep_largest is True
    refused = {("--postprocessing", choice, "context"): "no choice for arm 'context'; it has baseline, masksup",
               ("--postprocessing", choice, "masksup", "--tta"): "its study ran without --tta",
               ("--postprocessing", choice, "masksup", "--keep_largest"): "give one of them",
               ("--postprocessing", str(tmp_path / "none.json"), "masksup"): "none.json: not a readable postprocessing.json",
               ("--postprocessing", str(tmp_path / "baseline-final.csv"), "masksup"): "not a readable postprocessing.json",
               ("--postprocessing", str(tmp_path / "other.json"), "masksup"): "not a postprocessing.json written by"}
    for extra, message in refused.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            options(*extra)
