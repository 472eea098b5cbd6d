"""Quality passes (issue 22): the same input gives the same scores and map, a certain model gives a flat,
near-zero map and full agreement, the mask is the plain one, and bad settings are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from infer_fixtures import make_record, picture

from medseg_masksup.errors import UserError
from medseg_masksup.inference.options import InferenceOptions
from medseg_masksup.inference.predictor import Predictor
from medseg_masksup.quality.passes import assess
from medseg_masksup.quality.settings import QualitySettings


class ConstantLogit(torch.nn.Module):
    """A certain model: the same large logit everywhere, whatever the input."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = logit
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 1, *x.shape[2:]), self.logit)


class Noisy(torch.nn.Module):
    """An uncertain model whose output depends on the input in every pixel (so masks and flips change it)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 1, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * self.conv(x)


def _image(seed: int = 0) -> np.ndarray:
    """A ``(C, x, y)`` 3-channel picture of 40 × 48 with a bright box, as the readers give it."""
    return picture(40, 48, (slice(5, 20), slice(10, 30)), seed=seed).transpose(2, 1, 0).astype(np.float32)


def _predictor(network: torch.nn.Module, **options) -> Predictor:
    return Predictor(network, make_record(), InferenceOptions(progress=False, **options))


@pytest.mark.parametrize("logit", [20.0, -20.0])
def test_certain_model_gives_a_flat_near_zero_map_and_full_agreement(logit):
    result = assess(_predictor(ConstantLogit(logit)), _image(), QualitySettings(k=3))
    assert result.uncertainty.shape == (48, 40)
    assert float(result.uncertainty.max()) < 1e-6
    assert result.scores["flip_agreement"] == 1.0 and result.scores["mask_agreement"] == 1.0
    assert result.scores["entropy"] < 1e-6 and result.scores["pixel_variance"] < 1e-12


def test_same_input_gives_the_same_scores_and_map_and_other_settings_change_them():
    predictor = _predictor(Noisy())
    first, second = (assess(predictor, _image(), QualitySettings(k=4)) for _ in range(2))
    assert first.scores == second.scores
    np.testing.assert_array_equal(first.uncertainty, second.uncertainty)
    assert 0.05 < float(first.uncertainty.max()) <= 1.0 and first.scores["mask_agreement"] < 1.0
    other_seed = assess(predictor, _image(), QualitySettings(k=4, seed=1))
    assert other_seed.scores["mask_agreement"] != first.scores["mask_agreement"]
    assert other_seed.scores["flip_agreement"] == first.scores["flip_agreement"]  # flips are not random


def test_masks_depend_on_each_plane_not_on_the_batch():
    """A volume of two different slices, segmented one slice per batch or both at once: the same masks."""
    volume = np.stack([_image(0), _image(1)], axis=-1)
    one = assess(_predictor(Noisy(), batch_size=1), volume, QualitySettings(passes="masks", k=3))
    two = assess(_predictor(Noisy(), batch_size=2), volume, QualitySettings(passes="masks", k=3))
    assert one.uncertainty.shape == (48, 40, 2)
    np.testing.assert_allclose(one.uncertainty, two.uncertainty, atol=1e-5)
    assert one.scores == pytest.approx(two.scores, abs=1e-6)


@pytest.mark.parametrize("options", [{}, {"tta": True}, {"keep_largest": True, "threshold": 0.4}])
def test_the_mask_and_probabilities_are_the_plain_ones(options):
    predictor = _predictor(Noisy(), **options)
    volume = np.stack([_image(0), _image(1)], axis=-1)
    for image in (_image(), volume):
        mask, prob, _ = predictor.segment(image)
        result = assess(predictor, image, QualitySettings(k=2))
        np.testing.assert_array_equal(result.mask, mask)
        np.testing.assert_array_equal(result.prob, prob)


def test_the_passes_give_the_scores_of_their_kind():
    assert QualitySettings(passes="flips").scores == ("flip_agreement", "entropy", "pixel_variance")
    assert QualitySettings(passes="masks").scores == ("mask_agreement", "entropy", "pixel_variance")
    assert QualitySettings().n_passes == 10 and QualitySettings(passes="masks", k=3).n_passes == 3
    result = assess(_predictor(Noisy()), _image(), QualitySettings(passes="flips"))
    assert set(result.scores) == {"flip_agreement", "entropy", "pixel_variance"}


@pytest.mark.parametrize("values, message", [
    ({"k": 0}, "uncertainty K (masked passes) must be a whole number from 1 to 64, got 0"),
    ({"k": 65}, "from 1 to 64, got 65"),
    ({"k": 2.5}, "from 1 to 64, got 2.5"),
    ({"passes": "dropout"}, "unknown uncertainty passes 'dropout'; choose one of flips, masks, both"),
    ({"mask_ratio": 1.0}, "uncertainty mask ratio must lie strictly between 0 and 1, got 1.0"),
    ({"mask_ratio": 0}, "strictly between 0 and 1, got 0"),
    ({"mask_kind": "circle"}, "unknown uncertainty mask kind 'circle'; choose one of freeform, patch, block"),
    ({"seed": -1}, "uncertainty seed must be a whole number >= 0, got -1"),
])
def test_bad_settings_are_refused_in_one_line(values, message):
    with pytest.raises(UserError) as err:
        QualitySettings(**values)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unknown_setting_names_the_source():
    with pytest.raises(UserError, match="run/quality.json: unknown uncertainty setting.s. K; known: k, mask_kind"):
        QualitySettings.from_dict({"K": 3}, "run/quality.json")
