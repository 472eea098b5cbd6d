"""The random transforms' generators in ``last.pt``: restored, the augmentation continues the same stream."""

from __future__ import annotations

import logging

import torch

from medseg_masksup.record import TrainingRecord
from medseg_masksup.training.augmentation import build_augmentation
from medseg_masksup.training.transform_rng import TransformRandomState, randomizables


def _sample() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {"image": torch.rand(3, 24, 24) * 2 - 1, "label": (torch.rand(1, 24, 24) > 0.5).float()}


def _augment(aug, n: int = 6) -> list[torch.Tensor]:
    return [torch.as_tensor(aug(_sample())["image"]).clone() for _ in range(n)]


def test_every_random_transform_is_found_including_wrapped_ones():
    aug = build_augmentation(TrainingRecord(img_size=[24, 24], augmentation="strong"))
    names = [type(t).__name__ for t in randomizables(aug)]
    assert {"RandAffined", "RandAffine", "RandAffineGrid", "Rand2DElasticd", "RandDeformGrid", "RandGaussianNoised"} <= set(names)
    assert len(names) == len({id(t) for t in randomizables(aug)})  # each once


def test_restored_generators_continue_the_same_augmentation_stream():
    record = TrainingRecord(img_size=[24, 24], augmentation="strong")
    original = build_augmentation(record)
    original.set_random_state(seed=3)
    _augment(original)  # "epoch 1"
    saved = TransformRandomState(original).state_dict()
    expected = _augment(original)  # "epoch 2" of the uninterrupted run

    resumed = build_augmentation(record)
    resumed.set_random_state(seed=3)  # a new process seeds its transforms as at the start
    assert not all(torch.equal(a, b) for a, b in zip(_augment(resumed), expected))
    TransformRandomState(resumed).load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(_augment(resumed), expected))


def test_a_checkpoint_of_another_transform_chain_is_skipped_with_a_warning(caplog):
    saved = TransformRandomState(build_augmentation(TrainingRecord(augmentation="light"))).state_dict()
    strong = build_augmentation(TrainingRecord(augmentation="strong"))
    before = [t.R.get_state()[1].copy() for t in randomizables(strong)]
    with caplog.at_level(logging.WARNING):
        TransformRandomState(strong).load_state_dict(saved)
    assert "random-transform states" in caplog.text
    assert all((t.R.get_state()[1] == b).all() for t, b in zip(randomizables(strong), before))
