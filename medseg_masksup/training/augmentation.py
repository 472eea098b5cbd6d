"""Training augmentation as MONAI dictionary transforms, by level, run after the cached preprocessing.

Levels (``record.augmentation``):

- ``none``: nothing (the MaskSup paper's recipe).
- ``light``: flips of both axes and 90° rotations (cheap; the embedded data's default).
- ``strong``: an nnU-Net-like 2D recipe. Spatial, on image and label together: flips, rotation by any
  angle and scaling 0.7–1.4 (p 0.3, reflection padding), elastic deformation (p 0.2, a few pixels).
  Intensity, on the image only (values in the normalised range): brightness, contrast, gamma, per-channel
  colour jitter, Gaussian noise and blur; with ``stain_jitter`` also H&E stain jitter
  (:class:`RandStainJitterd`) for histology.

In ``patch`` mode a random ``img_size`` patch is cropped after the global spatial transforms and
before the elastic one, so every batch has one size whatever the image sizes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    MapTransform,
    Rand2DElasticd,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandomizableTransform,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
)

from ..record import TrainingRecord

AUGMENTATIONS = ("none", "light", "strong")
BOTH = ("image", "label")

# Ruifrok & Johnston's H&E-DAB stain vectors (rows: haematoxylin, eosin, DAB), the ones scikit-image uses.
_RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / _RGB_FROM_HED.norm(dim=1, keepdim=True)
_RGB_FROM_HED[2] = torch.linalg.cross(_RGB_FROM_HED[0], _RGB_FROM_HED[1])
_HED_FROM_RGB = torch.linalg.inv(_RGB_FROM_HED)


class RandStainJitterd(RandomizableTransform, MapTransform):
    """H&E stain jitter (Tellez et al. 2018): each stain's optical density is scaled by 1 ± ``sigma`` and
    shifted by ± ``sigma``; the image must be RGB in ``value_range`` (the training normalised range)."""

    def __init__(self, keys: KeysCollection, sigma: float = 0.05, prob: float = 0.3,
                 value_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.sigma = sigma
        self.value_range = value_range
        self._alpha = self._beta = None

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._alpha = torch.as_tensor(self.R.uniform(1 - self.sigma, 1 + self.sigma, 3), dtype=torch.float32)
        self._beta = torch.as_tensor(self.R.uniform(-self.sigma, self.sigma, 3), dtype=torch.float32)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        lo, hi = self.value_range
        for key in self.key_iterator(d):
            img = d[key]
            if img.shape[0] != 3:
                raise ValueError(f"stain jitter needs an RGB image, '{key}' has {img.shape[0]} channels")
            rgb = ((img.float() - lo) / (hi - lo)).clamp(1e-6, 1.0)
            od = -torch.log(rgb)  # optical density, (3, H, W)
            hed = torch.einsum("ij,i...->j...", _HED_FROM_RGB, od)
            hed = hed * self._alpha.view(3, *([1] * (hed.ndim - 1))) + self._beta.view(3, *([1] * (hed.ndim - 1)))
            od = torch.einsum("ij,i...->j...", _RGB_FROM_HED, hed)
            out = torch.exp(-od).clamp(0.0, 1.0) * (hi - lo) + lo
            d[key] = img.clone().copy_(out) if hasattr(img, "copy_") else out
        return d


def _spatial(record: TrainingRecord) -> list:
    return [
        RandFlipd(BOTH, prob=0.5, spatial_axis=0),
        RandFlipd(BOTH, prob=0.5, spatial_axis=1),
        RandAffined(BOTH, prob=0.3, rotate_range=(math.pi,), scale_range=((-0.3, 0.4), (-0.3, 0.4)),
                    mode=("bilinear", "nearest"), padding_mode="reflection"),
    ]


def _intensity(record: TrainingRecord, stain_jitter: bool) -> list:
    lo, hi = record.normalised_range
    out = [RandStainJitterd("image", sigma=0.05, prob=0.3, value_range=(lo, hi))] if stain_jitter else []
    return out + [
        RandShiftIntensityd("image", offsets=0.1 * (hi - lo), prob=0.3),  # brightness
        RandScaleIntensityd("image", factors=0.25, prob=0.3),  # contrast about mid-grey
        RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.3),
        RandScaleIntensityd("image", factors=0.1, prob=0.3, channel_wise=True),  # colour jitter
        RandGaussianNoised("image", std=0.03 * (hi - lo), prob=0.15),
        RandGaussianSmoothd("image", sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), prob=0.15),
    ]


def build_augmentation(record: TrainingRecord, stain_jitter: bool = False) -> Compose:
    """The random part of the training pipeline for ``record.augmentation`` and ``record.spatial_mode``."""
    level = record.augmentation
    if level not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {level!r}; choose one of {', '.join(AUGMENTATIONS)}")
    crop = [RandSpatialCropd(BOTH, roi_size=list(record.img_size), random_size=False)] if record.spatial_mode == "patch" else []
    if level == "none":
        return Compose(crop)
    if level == "light":
        flips = [RandFlipd(BOTH, prob=0.5, spatial_axis=0), RandFlipd(BOTH, prob=0.5, spatial_axis=1),
                 RandRotate90d(BOTH, prob=0.5, max_k=3)]
        return Compose(crop + flips)
    elastic = Rand2DElasticd(BOTH, spacing=(32, 32), magnitude_range=(1.0, 3.0), prob=0.2,
                             mode=("bilinear", "nearest"), padding_mode="reflection")
    return Compose(_spatial(record) + crop + [elastic] + _intensity(record, stain_jitter))
