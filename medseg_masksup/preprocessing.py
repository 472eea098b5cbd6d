"""The one definition of preprocessing, built from a :class:`TrainingRecord`.

Training (bundle) and inference both call these functions with the record that the checkpoint
carries, so the image a model sees at inference is prepared exactly as during training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.data import PILReader
from monai.transforms import Compose, EnsureTyped, LoadImaged, Resized, ScaleIntensityRanged

from .record import TrainingRecord
from .transforms import BinarizeLabeld, CheckBinaryLabeld, CheckSameSized, EnsureChannelsd, ScaleBitDepthd, standard_mode


def image_transforms(record: TrainingRecord, keys: Sequence[str] = ("image",)) -> list:
    """Channel-first image → ``in_channels`` channels, resized to ``img_size``, scaled to ``normalised_range``."""
    (a_min, a_max), (b_min, b_max) = record.intensity_range, record.normalised_range
    return [
        EnsureChannelsd(keys, channels=record.in_channels),
        Resized(keys, spatial_size=record.img_size, mode="area"),
        ScaleIntensityRanged(keys, a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=True),
        EnsureTyped(keys, dtype=torch.float32),
    ]


def label_transforms(record: TrainingRecord, keys: Sequence[str] = ("label",)) -> list:
    """Any mask → one 0/1 channel (``> label_threshold``), resized with nearest neighbour."""
    return [
        BinarizeLabeld(keys, threshold=record.label_threshold),
        Resized(keys, spatial_size=record.img_size, mode="nearest"),
        EnsureTyped(keys, dtype=torch.float32),
    ]


def training_preprocessing(record: TrainingRecord) -> Compose:
    """Load an ``{"image", "label"}`` item (PNG/JPG/BMP/TIFF via PIL) and prepare both (deterministic, cacheable).

    Palette and other colour modes become RGB; values of ``record.bit_depth``-bit images are scaled onto 0..255
    (full range to full range), exactly as inference scales them.
    Errors name the files: an unreadable file, an image and mask of different sizes, or a grey-level mask
    that the default ``label_threshold`` 0 would read as almost all foreground.
    """
    load_image = LoadImaged("image", reader=PILReader(converter=standard_mode), dtype=None, image_only=True,
                            ensure_channel_first=True)
    load_label = LoadImaged("label", reader="PILReader", image_only=True, ensure_channel_first=True)
    return Compose([load_image, load_label, CheckSameSized(("image", "label")),
                    CheckBinaryLabeld("label", threshold=record.label_threshold), ScaleBitDepthd("image", bit_depth=record.bit_depth),
                    *image_transforms(record), *label_transforms(record)])
