"""``compare --uncertainty``: a finished study gets each final checkpoint's quality-score evaluation added (no
retraining, nothing else touched) and a report section judging the scores by risk–coverage, per arm, on its
held-out cases pooled over the folds; a study from before reports as it did."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medseg_masksup.commands.compare import main as compare
from medseg_masksup.quality.settings import SCORES, QualitySettings
from medseg_masksup.study.quality import QUALITY_KIND, TABLE_FILE, pools, quality_section
from study_fixtures import check_evaluation_added, check_kept_once_asked, check_missing_checkpoint, tagged_evaluations

RUNS = ("baseline-s0-f0", "masksup-s0-f0")
REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _aurc_by_enumeration(confidence: list[float], risk: list[float]) -> float:
    """AURC averaged over every order that keeps the more confident cases first (ties in every order): an
    independent check of the risk–coverage module's tie rule."""
    n = len(risk)
    areas = [np.mean([np.mean([risk[i] for i in order[:k]]) for k in range(1, n + 1)])
             for order in itertools.permutations(range(n))
             if all(confidence[a] >= confidence[b] for a, b in zip(order, order[1:]))]
    return float(np.mean(areas))


@pytest.mark.integration
def test_uncertainty_is_added_to_a_finished_study_without_retraining(tiny_study, capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study  # a copy of the session's study, trained and evaluated without quality scores
    # no training folder, checkpoint or other evaluation is written or touched (contents and mtimes)
    results = check_evaluation_added(compare, study, args, capsys, "--uncertainty", QUALITY_KIND)
    assert sorted(results) == list(RUNS)
    names = QualitySettings().scores
    for key, result in results.items():
        rows = _rows(study / result["eval"][QUALITY_KIND]["per_case_csv"])
        assert set(names) <= set(rows[0]) and all(row[name] != "" for row in rows for name in names)
        plain = {r["case"]: r["dice"] for r in _rows(study / result["eval"]["final"]["per_case_csv"])}
        assert {r["case"]: r["dice"] for r in rows} == plain  # the same masks: only the scores are new
        summary = json.loads((study / "runs" / key / f"eval-{QUALITY_KIND}" / "summary.json").read_text())
        assert summary["checkpoint"].endswith("last.pt") and summary["uncertainty"]["passes"] == QualitySettings().as_dict()
    assert json.loads((study / "study.json").read_text())["uncertainty"] is True

    # the report: per arm, the held-out cases pooled over its folds, every candidate judged by risk-coverage
    text = (study / "report" / "summary.md").read_text()
    assert "Quality scores (`compare --uncertainty`" in text
    record = json.loads((study / "report" / TABLE_FILE).read_text())
    assert [(p["arm"], p["seed"], p["folds"]) for p in record["pools"]] == [("baseline", 0, [0]), ("masksup", 0, [0])]
    for pool, key in zip(record["pools"], RUNS):
        assert (study / "report" / f"risk_coverage-{pool['arm']}-s0.png").stat().st_size > 0
        rows = _rows(study / "runs" / key / f"eval-{QUALITY_KIND}" / "per_case.csv")
        dice = [float(r["dice"]) for r in rows]
        risk = [1 - d for d in dice]
        assert pool["cases"] == len(rows) == len({r["case"] for r in rows})
        assert list(pool["scores"]) == list(names)
        for name in names:
            row = pool["scores"][name]
            assert f"| {pool['arm']} | 0 | 0 | {len(rows)} | " in text and name in text
            confidence = [float(r[name]) * (1 if SCORES[name].higher_is_better else -1) for r in rows]
            assert row["chance"] == pytest.approx(np.mean(risk))
            assert row["oracle"] == pytest.approx(_aurc_by_enumeration(dice, risk))
            assert row["aurc"] == pytest.approx(_aurc_by_enumeration(confidence, risk))
            worst = _aurc_by_enumeration([-d for d in dice], risk)  # the ranking that keeps the worst first
            assert row["oracle"] - 1e-9 <= row["aurc"] <= worst + 1e-9 and row["oracle"] - 1e-9 <= row["chance"] <= worst + 1e-9
            assert min(dice) - 1e-9 <= row["kept_dice_80"] <= max(dice) + 1e-9
            assert 0 <= row["worst_precision"] <= 1

    assert tagged_evaluations(study, "uncertainty") == [f"evaluate-{key}-{QUALITY_KIND}" for key in RUNS]
    check_kept_once_asked(compare, study, args, capsys, "Quality scores (`compare --uncertainty`")


@pytest.mark.integration
def test_uncertainty_on_a_run_without_its_checkpoint_names_the_file_and_keeps_the_result(tiny_study, capfd, monkeypatch):
    """A committed study keeps no weights: the run is named in one line and keeps its result; the other run
    gets the scores, and the report waits for every compared run, naming the one without."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study
    check_missing_checkpoint(compare, study, args, capfd, "--uncertainty", QUALITY_KIND)
    text = (study / "report" / "summary.md").read_text()
    assert "Quality scores (" not in text and "still without: baseline-s0-f0" in text
    assert not (study / "report" / TABLE_FILE).exists()


def _fake_quality_run(folder: Path, arm: str, fold: int, cases: dict[str, tuple[float, float]], seed: int = 0) -> dict:
    """A result with a ``final-uncertainty`` evaluation: per case (Dice, flip agreement)."""
    path = folder / f"{arm}-s{seed}-f{fold}.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["case", "status", "dice", "flip_agreement"])
        writer.writeheader()
        writer.writerows({"case": c, "status": "ok", "dice": d, "flip_agreement": s} for c, (d, s) in cases.items())
    return {"key": f"{arm}-s{seed}-f{fold}", "arm": arm, "seed": seed, "fold": fold,
            "eval": {QUALITY_KIND: {"per_case_csv": str(path)}}}


def test_pools_take_every_case_once_per_seed(tmp_path):
    f0 = {"a": (0.9, 0.95), "b": (0.4, 0.5)}
    f1 = {"c": (0.8, 0.9), "d": (0.6, 0.7), "e": (0.2, 0.3)}
    results = [_fake_quality_run(tmp_path, "masksup", 1, f1), _fake_quality_run(tmp_path, "masksup", 0, f0),
               _fake_quality_run(tmp_path, "baseline", 0, f0)]
    found = pools(results)
    assert [(p.arm, p.seed, p.folds, len(p.rows)) for p in found] == [("baseline", 0, (0,), 2), ("masksup", 0, (0, 1), 5)]
    assert sorted(r["case"] for r in found[1].rows) == sorted([*f0, *f1]) and found[1].scores == ("flip_agreement",)

    # folds that score the same cases (a fixed test split) are not pooled: no case counts twice
    (tmp_path / "shared").mkdir()
    shared = [_fake_quality_run(tmp_path / "shared", "masksup", 0, f0), _fake_quality_run(tmp_path / "shared", "masksup", 1, f0)]
    assert [(p.name, p.folds, len(p.rows)) for p in pools(shared)] == [("masksup-s0-f0", (0,), 2), ("masksup-s0-f1", (1,), 2)]

    text, paths = quality_section(results, tmp_path / "report", figures=False)
    record = json.loads(paths["risk_coverage_json"].read_text())
    assert record["pools"][1]["cases"] == 5 and record["pools"][1]["scores"]["flip_agreement"]["gap_closed"] == pytest.approx(1.0)
    assert "| masksup | 0 | 0 1 | 5 | **flip_agreement** |" in text and not list((tmp_path / "report").glob("*.png"))

    del results[0]["eval"][QUALITY_KIND]
    text, paths = quality_section(results, tmp_path / "report2")
    assert paths == {} and "still without: masksup-s0-f1" in text


def test_report_only_on_a_study_from_before_is_unchanged(tmp_path, monkeypatch, capsys):
    """A committed study without quality evaluations reports exactly as without the quality section."""
    import medseg_masksup.study.quality as quality

    study = shutil.copytree(REPO / "docs" / "studies" / "glas-cv", tmp_path / "glas-cv",
                            ignore=shutil.ignore_patterns("report", "*.lock*"))
    assert compare(["--output_dir", str(study), "--report_only", "--report_dir", str(tmp_path / "now")]) == 0
    text = (tmp_path / "now" / "summary.md").read_text()
    assert "| baseline | final |" in text and "Quality scores" not in text and "risk–coverage" not in text
    assert not (tmp_path / "now" / TABLE_FILE).exists() and not list((tmp_path / "now").glob("risk_coverage*"))

    monkeypatch.setattr(quality, "quality_section", lambda *args, **kwargs: ("", {}))
    assert compare(["--output_dir", str(study), "--report_only", "--report_dir", str(tmp_path / "without")]) == 0
    assert (tmp_path / "without" / "summary.md").read_text() == text
