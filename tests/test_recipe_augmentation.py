"""Training augmentation: image and label stay aligned under every spatial transform, labels stay binary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Randomizable

from medseg_masksup.record import TrainingRecord
from medseg_masksup.training.augmentation import AUGMENTATIONS, RandStainJitterd, build_augmentation


def _item(height: int = 96, width: int = 80, seed: int = 0) -> dict:
    """An image whose three channels *are* its label (±1), so alignment can be read off the image."""
    rng = np.random.default_rng(seed)
    label = np.zeros((1, height, width), np.float32)
    for _ in range(4):
        r, c = rng.integers(0, height - 20), rng.integers(0, width - 20)
        h, w = rng.integers(8, 20, 2)
        label[0, r : r + h, c : c + w] = 1
    image = np.repeat(label * 2 - 1, 3, axis=0)
    return {"image": torch.from_numpy(image), "label": torch.from_numpy(label)}


def _spatial_transforms(record: TrainingRecord) -> list:
    """Every transform of the level that moves pixels (those applied to the label too)."""
    return [t for t in build_augmentation(record).transforms if "label" in getattr(t, "keys", ())]


@pytest.mark.parametrize("spatial_mode", ["resize", "patch"])
@pytest.mark.parametrize("level", ["light", "strong"])
def test_every_spatial_transform_keeps_image_and_label_aligned(level, spatial_mode):
    record = TrainingRecord(img_size=[64, 64], augmentation=level, spatial_mode=spatial_mode)
    transforms = _spatial_transforms(record)
    assert transforms, "each level has spatial transforms"
    for transform in transforms:
        if hasattr(transform, "prob"):
            transform.prob = 1.0  # force it to apply
        for seed in range(5):
            if isinstance(transform, Randomizable):
                transform.set_random_state(seed)
            out = transform(_item(seed=seed))
            image, label = np.asarray(out["image"]), np.asarray(out["label"])
            assert image.shape[1:] == label.shape[1:], type(transform).__name__
            assert set(np.unique(label)) <= {0.0, 1.0}, f"{type(transform).__name__} made the label non-binary"
            agree = ((image[0] > 0) == (label[0] > 0.5)).mean()
            assert agree > 0.97, f"{type(transform).__name__} (seed {seed}): image and label agree on {agree:.3f}"


def test_whole_pipeline_gives_patches_of_img_size_and_keeps_alignment():
    record = TrainingRecord(img_size=[48, 48], augmentation="strong", spatial_mode="patch")
    pipeline = build_augmentation(record)
    pipeline.set_random_state(3)
    for seed in range(6):
        out = pipeline(_item(seed=seed))
        assert tuple(out["image"].shape) == (3, 48, 48) and tuple(out["label"].shape) == (1, 48, 48)
        assert set(np.unique(np.asarray(out["label"]))) <= {0.0, 1.0}


def test_levels_and_unknown_level():
    assert build_augmentation(TrainingRecord(augmentation="none")).transforms == ()
    light = build_augmentation(TrainingRecord(augmentation="light"))
    strong = build_augmentation(TrainingRecord(augmentation="strong"), stain_jitter=True)
    assert len(strong.transforms) > len(light.transforms)
    assert any(isinstance(t, RandStainJitterd) for t in strong.transforms)
    with pytest.raises(ValueError, match="unknown augmentation 'heavy'"):
        build_augmentation(TrainingRecord(augmentation="heavy"))
    assert set(AUGMENTATIONS) == {"none", "light", "strong"}


def test_stain_jitter_changes_colour_within_range_and_is_identity_at_zero_sigma():
    rng = np.random.default_rng(0)
    rgb = torch.from_numpy(rng.uniform(-0.9, 0.9, (3, 16, 16)).astype(np.float32))
    same = RandStainJitterd("image", sigma=0.0, prob=1.0)({"image": rgb})["image"]
    assert torch.allclose(same, rgb, atol=1e-4)
    jitter = RandStainJitterd("image", sigma=0.1, prob=1.0)
    jitter.set_random_state(1)
    out = jitter({"image": rgb})["image"]
    assert out.shape == rgb.shape and float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    assert float((out - rgb).abs().mean()) > 1e-3
    with pytest.raises(ValueError, match="needs an RGB image"):
        RandStainJitterd("image", prob=1.0)({"image": rgb[:1]})


def test_intensity_transforms_do_not_move_pixels():
    """The image-only transforms (all forced on) keep the image's structure where the label is."""
    record = TrainingRecord(img_size=[64, 64], augmentation="strong", spatial_mode="resize")
    image_only = [t for t in build_augmentation(record, stain_jitter=True).transforms if "label" not in t.keys]
    assert len(image_only) >= 6
    for seed in range(5):
        item = _item(seed=seed)
        for transform in image_only:
            transform.prob = 1.0
            transform.set_random_state(seed)
            item = transform(item)
        image, label = np.asarray(item["image"]), np.asarray(item["label"])
        grey = image.mean(0)
        fg = label[0] > 0.5
        middle = (grey[fg].mean() + grey[~fg].mean()) / 2
        agree = ((grey > middle) == fg).mean()
        assert agree > 0.9, f"seed {seed}: {agree:.3f}"
