"""The least-trusted cases figure of ``evaluate --uncertainty``: which cases, which are flagged, and the drawing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medseg_masksup.quality.least_trusted import DrawnCase, flagged_below, least_trusted, plot_least_trusted


def _rows(values, name="flip_agreement"):
    return [{"case": f"c{i}", name: v, "dice": 0.5 + i / 40} for i, v in enumerate(values)]


def test_the_least_trusted_are_the_lowest_agreement_or_the_highest_entropy_first():
    rows = _rows([0.9, 0.2, 0.7, 0.2, 0.99])
    assert [(rank, r["case"]) for rank, r in least_trusted(rows, "flip_agreement", 3)] == [(1, "c1"), (2, "c3"), (3, "c2")]
    rows = _rows([0.9, 0.2, 0.7], name="entropy")  # entropy: higher means less trust
    assert [r["case"] for _, r in least_trusted(rows, "entropy", 2)] == ["c0", "c2"]
    assert least_trusted(rows, "entropy", 0) == []


def test_the_flag_follows_the_stored_rule_one_of_ten_at_90_percent_coverage():
    rows = _rows([0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.3])
    flagged = flagged_below(rows, "flip_agreement", 0.9)
    assert [r["case"] for r in rows if flagged(r["flip_agreement"])] == ["c9"]
    entropy_rows = _rows([0.1, 0.2, 0.9], name="entropy")
    flagged = flagged_below(entropy_rows, "entropy", 0.6)
    assert [r["case"] for r in entropy_rows if flagged(r["entropy"])] == ["c2"]


def test_the_figure_draws_one_row_per_case_and_nothing_without_cases(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.zeros((40, 60), bool)
    truth[10:30, 15:45] = True
    cases = [DrawnCase(f"case{i}", rng.random((40, 60, 3)).astype(np.float32), truth, np.roll(truth, 3 * i, axis=1),
                       rng.random((40, 60)), dice=0.9 - i / 10, score=0.8 - i / 10, rank=i + 1, flagged=i == 0)
             for i in range(2)]
    one = plot_least_trusted(cases[:1], "flip_agreement", 0.9, tmp_path / "one.png")
    two = plot_least_trusted(cases, "flip_agreement", 0.9, tmp_path / "two.png")
    with Image.open(one) as a, Image.open(two) as b:
        assert b.height > 1.6 * a.height and a.width == pytest.approx(b.width, rel=0.05)
    assert plot_least_trusted([], "flip_agreement", 0.9, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
