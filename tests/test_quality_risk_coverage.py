"""Risk–coverage (issue 22): AURC, oracle and chance on a small hand-checked example, ties, the other numbers of
the candidate table, and the review threshold chosen for a coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medseg_masksup.errors import UserError
from medseg_masksup.quality.review import choose_threshold
from medseg_masksup.quality.risk_coverage import (aurc, evaluate_score, inclusion, kept_dice, selective_risks,
                                                  worst_precision)

# Four cases. Dice 0.9, 0.5, 0.8, 0.2 → risk 0.1, 0.5, 0.2, 0.8. Best first: risks 0.1, 0.2, 0.5, 0.8;
# selective risks 0.1, 0.15, 0.8/3, 1.6/4 = 0.4; oracle AURC = (0.1 + 0.15 + 0.26667 + 0.4) / 4 = 0.2291667.
# Worst first: 0.8, 0.65, 0.5, 0.4 → 0.5875. Chance: the mean risk, 0.4.
DICE = np.array([0.9, 0.5, 0.8, 0.2])
RISK = 1 - DICE
ORACLE, CHANCE, WORST = 0.9166667 / 4, 0.4, 2.35 / 4


def test_hand_checked_aurc_oracle_chance():
    assert selective_risks(DICE, RISK) == pytest.approx([0.1, 0.15, 0.8 / 3, 0.4])
    assert aurc(DICE, RISK) == pytest.approx(ORACLE)
    assert aurc(-DICE, RISK) == pytest.approx(WORST)


def test_perfect_score_equals_oracle_and_constant_score_equals_chance():
    perfect = evaluate_score(3 * DICE + 1, DICE, higher_is_better=True)  # any increasing function of Dice
    assert perfect["aurc"] == pytest.approx(ORACLE) and perfect["oracle"] == pytest.approx(ORACLE)
    assert perfect["gap_closed"] == pytest.approx(1.0) and perfect["spearman"] == pytest.approx(1.0)
    assert perfect["worst_precision"] == 1.0
    constant = evaluate_score(np.full(4, 0.7), DICE, higher_is_better=True)
    assert constant["aurc"] == pytest.approx(CHANCE) and constant["chance"] == pytest.approx(CHANCE)
    assert constant["gap_closed"] == pytest.approx(0.0) and math.isnan(constant["spearman"])
    assert constant["worst_precision"] == pytest.approx(0.25)  # chance: 1 flagged of 4, at random


def test_lower_is_better_scores_are_negated():
    entropy_like = 1 - DICE  # high entropy = low Dice: a perfect "lower is better" score
    assert evaluate_score(entropy_like, DICE, higher_is_better=False)["aurc"] == pytest.approx(ORACLE)
    assert evaluate_score(entropy_like, DICE, higher_is_better=True)["aurc"] == pytest.approx(WORST)


def test_ties_count_in_expectation():
    # the two best cases tie: either order is equally likely, so the first point is their mean risk, 0.15
    confidence = np.array([1.0, 0.0, 1.0, -1.0])
    assert selective_risks(confidence, RISK) == pytest.approx([0.15, 0.15, 0.8 / 3, 0.4])
    assert inclusion([1.0, 2.0, 2.0, 3.0], 2) == pytest.approx([1.0, 0.5, 0.5, 0.0])


def test_kept_dice_and_worst_precision():
    dice = np.linspace(0.1, 1.0, 10)  # case i has Dice 0.1 (i + 1)
    confidence = dice.copy()
    confidence[[0, 9]] = confidence[[9, 0]]  # the worst case looks most trustworthy
    assert kept_dice(dice, dice, 0.9) == pytest.approx(dice[1:].mean())
    assert kept_dice(confidence, dice, 0.8) == pytest.approx(np.delete(dice, [1, 9]).mean())
    assert worst_precision(dice, dice) == 1.0 and worst_precision(confidence, dice) == 0.0


def test_mismatched_or_empty_inputs_are_refused_in_one_line():
    with pytest.raises(UserError, match="one confidence per case, got 3 confidences for 4 cases"):
        selective_risks([1, 2, 3], RISK)
    with pytest.raises(UserError, match="finite score"):
        evaluate_score([1.0, math.nan, 0.5, 0.2], DICE, True)


def test_threshold_keeps_the_coverage_share_midway_between_cases():
    scores = [0.99, 0.95, 0.90, 0.70, 0.60, 0.98, 0.97, 0.96, 0.94, 0.93]
    threshold, reached = choose_threshold(scores, "flip_agreement", 0.8)
    assert threshold == pytest.approx((0.90 + 0.70) / 2) and reached == pytest.approx(0.8)
    assert sorted(s for s in scores if s < threshold) == [0.60, 0.70]
    # lower-is-better: the two highest entropies are flagged
    threshold, reached = choose_threshold([0.1, 0.5, 0.2, 0.9, 0.3], "entropy", 0.6)
    assert threshold == pytest.approx(0.4) and reached == pytest.approx(0.6)
    # a tie at the cut keeps both tied cases (coverage reached is higher than asked)
    threshold, reached = choose_threshold([0.9, 0.8, 0.8, 0.5], "flip_agreement", 0.5)
    assert threshold == pytest.approx(0.8) and reached == pytest.approx(0.75)
    with pytest.raises(UserError, match=r"review coverage must lie in \(0, 1\], got 1.5"):
        choose_threshold(scores, "flip_agreement", 1.5)
