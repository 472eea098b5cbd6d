"""Study plans and statistics: the grid, equal compute, refusing incomparable resumes; bootstrap and Wilcoxon."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medseg_masksup.errors import UserError
from medseg_masksup.study.plan import StudyPlan, check_resumable, parse_custom_arms, parse_overrides
from medseg_masksup.study.statistics import bootstrap_ci, paired_difference


def test_runs_are_ordered_fold_by_fold_with_equal_compute_arm():
    plan = StudyPlan(name="s", datalist="d.json", epochs=10, arms=["baseline", "masksup", "baseline-2x"],
                     seeds=[0, 1], folds=[0, 1])
    runs = list(plan.runs())
    assert [r.key for r in runs[:3]] == ["baseline-s0-f0", "masksup-s0-f0", "baseline-2x-s0-f0"]
    assert len(runs) == 12
    epochs = {r.arm.name: r.epochs for r in runs}
    assert epochs == {"baseline": 10, "masksup": 10, "baseline-2x": 20}
    assert {r.arm.method for r in runs if r.arm.name == "baseline-2x"} == {"baseline"}


def test_bad_plans_are_refused():
    with pytest.raises(UserError, match="unknown arm"):
        StudyPlan(name="s", datalist="d", epochs=1, arms=["magic"])
    with pytest.raises(UserError, match="sets method, seed itself"):
        StudyPlan(name="s", datalist="d", epochs=1, overrides={"seed": 3, "method": "x"})
    with pytest.raises(UserError, match="positive integer"):
        StudyPlan(name="s", datalist="d", epochs=0)


def test_resuming_needs_the_same_training_settings(tmp_path):
    saved = StudyPlan(name="s", datalist="d.json", epochs=10, overrides={"lr": 0.001})
    saved.save(tmp_path / "study.json")
    loaded = StudyPlan.load(tmp_path / "study.json")
    check_resumable(loaded, StudyPlan(name="s", datalist="d.json", epochs=10, overrides={"lr": 0.001}, seeds=[0, 1]),
                    tmp_path / "study.json")
    with pytest.raises(UserError, match=r"other settings \(epochs: 10 -> 20"):
        check_resumable(loaded, StudyPlan(name="s", datalist="d.json", epochs=20, overrides={"lr": 0.001}),
                        tmp_path / "study.json")


def test_overrides_parse_json_values():
    assert parse_overrides(["lr=0.001", "img_size=[64,64]", "seg_loss=dicece", "amp=false"]) == {
        "lr": 0.001, "img_size": [64, 64], "seg_loss": "dicece", "amp": False}
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["lr"])


def test_an_override_naming_no_setting_is_refused_before_any_run_with_the_closest_name():
    with pytest.raises(UserError, match=r"^--set: unknown setting --bta; did you mean --beta"):
        parse_overrides(["bta=0.5"])
    with pytest.raises(UserError, match=r"^--arm light: unknown setting --gama; did you mean --gamma"):
        parse_custom_arms([["light", "masksup", "beta=0.5", "gama=0.5"]])
    assert parse_overrides(["train#trainer#max_epochs=2"]) == {"train#trainer#max_epochs": 2}


def test_bootstrap_ci_covers_the_mean_and_narrows_with_more_cases():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.8, 0.1, 20), rng.normal(0.8, 0.1, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([0.5])))


def test_paired_difference_detects_a_consistent_gain_and_not_noise():
    rng = np.random.default_rng(1)
    reference = rng.uniform(0.6, 0.9, 40)
    better = paired_difference(reference + 0.03 + rng.normal(0, 0.005, 40), reference)
    assert better.mean == pytest.approx(0.03, abs=0.003) and better.ci_low > 0 and better.p_wilcoxon < 1e-6
    assert better.wins == 40 and better.losses == 0
    noise = paired_difference(reference + rng.normal(0, 0.02, 40), reference)
    assert noise.ci_low < 0 < noise.ci_high and noise.p_wilcoxon > 0.01
    with pytest.raises(ValueError, match="differ in shape"):
        paired_difference(reference[:3], reference)


def test_report_tables_use_only_folds_every_arm_finished():
    from medseg_masksup.study.report import complete_groups

    runs = [{"key": k, "arm": a, "seed": 0, "fold": f} for k, a, f in
            [("baseline-s0-f0", "baseline", 0), ("masksup-s0-f0", "masksup", 0), ("baseline-s0-f1", "baseline", 1)]]
    kept, left_out = complete_groups(runs)
    assert [r["key"] for r in kept] == ["baseline-s0-f0", "masksup-s0-f0"]
    assert left_out == ["baseline-s0-f1"]


def test_tta_is_no_training_setting(tmp_path):
    saved = StudyPlan(name="s", datalist="d.json", epochs=10)
    saved.save(tmp_path / "study.json")
    check_resumable(StudyPlan.load(tmp_path / "study.json"), StudyPlan(name="s", datalist="d.json", epochs=10, tta=True),
                    tmp_path / "study.json")
    assert StudyPlan.load(tmp_path / "study.json").tta is False


def test_tiny_p_values_read_as_below_one_in_a_thousand_not_zero():
    from medseg_masksup.study.report import format_p

    assert format_p(0.0004) == "< 0.001" and format_p(0.0) == "< 0.001"
    assert format_p(0.001) == "0.001" and format_p(0.5504) == "0.550"
    assert format_p(float("nan")) == "–" and format_p(None) == "–"


def test_user_defined_arms_train_their_method_with_their_own_settings():
    from medseg_masksup.study.plan import parse_custom_arms

    custom = parse_custom_arms([["masksup-ema", "masksup", "ema_decay=0.999", "mask_warmup_epochs=20"]])
    plan = StudyPlan(name="s", datalist="d.json", epochs=10, arms=["baseline", "masksup", "masksup-ema"], custom_arms=custom)
    runs = {r.key: r for r in plan.runs()}
    assert list(runs) == ["baseline-s0-f0", "masksup-s0-f0", "masksup-ema-s0-f0"]
    variant = runs["masksup-ema-s0-f0"]
    assert (variant.arm.method, variant.epochs) == ("masksup", 10)
    assert variant.arm.overrides == {"ema_decay": 0.999, "mask_warmup_epochs": 20}
    assert runs["masksup-s0-f0"].arm.overrides == {}


@pytest.mark.parametrize("words, message", [
    (["baseline", "masksup", "lr=0.1"], "is built in"),
    (["mine", "magic"], "method must be one of baseline, context, masksup, got 'magic'"),
    (["mine", "masksup", "epochs=5"], "arm mine: the study sets epochs itself"),
    (["my arm", "masksup"], "plain folder name"),
    (["mine"], "--arm expects NAME METHOD"),
])
def test_bad_user_defined_arms_are_refused(words, message):
    from medseg_masksup.study.plan import parse_custom_arms

    with pytest.raises(UserError, match=message):
        parse_custom_arms([words])


def test_a_defined_arm_keeps_its_definition_when_the_study_resumes(tmp_path):
    from medseg_masksup.study.plan import parse_custom_arms

    def plan(*definitions):
        custom = parse_custom_arms(definitions)
        return StudyPlan(name="s", datalist="d.json", epochs=10, arms=["baseline", *custom], custom_arms=custom)

    saved = plan(["mine", "masksup", "ema_decay=0.999"])
    saved.save(tmp_path / "study.json")
    loaded = StudyPlan.load(tmp_path / "study.json")
    assert loaded.arm("mine").overrides == {"ema_decay": 0.999}
    check_resumable(loaded, plan(["mine", "masksup", "ema_decay=0.999"], ["other", "baseline", "lr=0.01"]),
                    tmp_path / "study.json")  # the same definition, and a new arm: fine
    check_resumable(loaded, plan(), tmp_path / "study.json")  # not repeated: the saved definition holds
    with pytest.raises(UserError, match="defines arm mine as"):
        check_resumable(loaded, plan(["mine", "masksup", "ema_decay=0.99"]), tmp_path / "study.json")


def test_report_pairs_a_defined_arm_with_the_arm_of_its_method(tmp_path):
    from study_fixtures import fake_run

    from medseg_masksup.study.report import write_study_report

    dice = [0.6, 0.7, 0.75, 0.8, 0.82, 0.85]
    results = [fake_run(tmp_path, "baseline", {"best": dice, "final": dice}),
               fake_run(tmp_path, "masksup", {"best": dice, "final": [d + 0.01 for d in dice]}),
               fake_run(tmp_path, "masksup-ema", {"best": dice, "final": [d + 0.03 for d in dice]}, method="masksup")]
    paths = write_study_report(results, tmp_path / "report")
    table = paths["summary_md"].read_text().split("| defined arm − arm of its method |")[1].splitlines()
    assert table[2].startswith("| masksup-ema − masksup | final | 1 | 6 | 0.0200 [")
    assert len([line for line in table if line.startswith("| masksup-ema − masksup |")]) == 2  # final and best
    with open(paths["variants_csv"]) as fh:
        assert fh.read().splitlines()[1].startswith("masksup-ema,masksup,final,")
    # without the method's own arm there is nothing to pair it with
    paths = write_study_report([results[0], results[2]], tmp_path / "report2")
    assert "defined arm" not in paths["summary_md"].read_text() and "variants_csv" not in paths


def test_report_shows_each_seed_and_the_mean_over_the_seeds_that_finished_every_fold(tmp_path):
    """Seeds 0 and 1 finished folds 0 and 1, seed 2 only fold 0: the mean over seeds uses seeds 0 and 1."""
    from study_fixtures import fake_run

    from medseg_masksup.study.report import seed_table, write_study_report

    results = []
    for seed, folds in ((0, (0, 1)), (1, (0, 1)), (2, (0,))):
        for fold in folds:
            for arm, gain in (("baseline", 0.0), ("masksup", 0.01 * (seed + 1))):
                folder = tmp_path / f"{arm}-s{seed}-f{fold}"
                folder.mkdir()
                dice = [0.5 + 0.1 * fold + 0.02 * seed + gain + 0.01 * i for i in range(3)]
                run = fake_run(folder, arm, {"best": dice, "final": dice}, split=f"heldout-fold{fold}")
                path = run["eval"]["final"]["per_case_csv"]
                with open(path) as fh:  # cases of another fold have other names
                    text = fh.read().replace("\nc", f"\nf{fold}c")
                with open(path, "w") as fh:
                    fh.write(text)
                results.append({**run, "key": folder.name, "seed": seed, "fold": fold})
    rows = {r["row"]: r for r in seed_table(results)}
    assert rows["baseline"]["seed_0"] == pytest.approx(0.5 + 0.05 + 0.01)  # folds 0 and 1, 3 cases each
    assert rows["baseline"]["folds_2"] == 1 and rows["baseline"]["complete_seeds"] == 2
    diff = rows["masksup − baseline"]
    assert [diff["seed_0"], diff["seed_1"], diff["seed_2"]] == pytest.approx([0.01, 0.02, 0.03])
    assert diff["mean"] == pytest.approx(0.015) and diff["std"] == pytest.approx(np.std([0.01, 0.02], ddof=1))
    paths = write_study_report(results, tmp_path / "report")
    text = paths["summary_md"].read_text()
    assert "| Dice per seed | checkpoint | seed 0 | seed 1 | seed 2 (1 of 2 folds) | mean ± std over 2 complete seeds |" in text
    assert "| masksup − baseline | final | +0.0100 | +0.0200 | +0.0300 | +0.0150 ± 0.0071 |" in text
    assert paths["seeds_csv"].is_file()
    assert seed_table([r for r in results if r["seed"] == 0]) == []  # one seed: no such table


def test_bar_chart_shows_every_confidence_interval_whole():
    """The upper limit used to be the largest mean + 0.05, which cut off wide CIs (PH2's IoU)."""
    from medseg_masksup.study.report import _y_range

    rows = [{"iou_mean": 0.79, "iou_ci_low": 0.71, "iou_ci_high": 0.85},
            {"iou_mean": 0.81, "iou_ci_low": 0.74, "iou_ci_high": 0.87}]
    low, high = _y_range(rows, "iou")
    assert low <= 0.71 and high >= 0.87 and high <= 1.0
    assert _y_range([{"iou_mean": 0.99, "iou_ci_low": math.nan, "iou_ci_high": math.nan}], "iou") == (0.94, 1.0)
