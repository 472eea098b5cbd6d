"""The one definition of preprocessing, built from a :class:`TrainingRecord`.

Training (bundle) and inference both call these functions with the record that the checkpoint
carries, so the image a model sees at inference is prepared exactly as during training.

Two ways for images to meet the network (``record.spatial_mode``):

- ``resize``: every image is squashed to ``img_size`` (the paper's recipe; right for the embedded
  data, whose images are already ``img_size``).
- ``patch`` (nnU-Net style): the aspect ratio is kept, the image is resized by ``record.scale``
  (1.0 = native pixels); training crops random ``img_size`` patches, validation and inference slide an
  ``img_size`` window over the whole image (:func:`make_inferer`).

Validation always scores at the label's native resolution, as ``medseg-masksup evaluate`` does:
labels are never resized there and predictions are resized back (:class:`MatchSpatialSized`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.inferers import Inferer, SimpleInferer, SlidingWindowInferer
from monai.transforms import Compose, EnsureTyped, Resized, ScaleIntensityRanged, SpatialPadd, Zoomd

from ..io.read_image2d import image2d_loader
from ..record import TrainingRecord
from .transforms import (BinarizeLabeld, CheckBinaryLabeld, CheckSameSized, EnsureChannelsd, FillNonFinited,
                         ReturnFreedMemory, ScaleBitDepthd)

SPATIAL_MODES = ("resize", "patch")
#: sliding-window settings shared by validation, the training report and inference
WINDOW_OVERLAP = 0.25
WINDOW_BLEND = "gaussian"


def _spatial(record: TrainingRecord, keys: Sequence[str], mode: str) -> list:
    """Resize to ``img_size`` (``resize`` mode) or by ``scale`` keeping the aspect ratio (``patch`` mode)."""
    spatial_mode = getattr(record, "spatial_mode", "resize")
    if spatial_mode == "resize":
        return [Resized(keys, spatial_size=record.img_size, mode=mode)]
    if spatial_mode != "patch":
        raise ValueError(f"unknown spatial_mode {spatial_mode!r}; choose one of {', '.join(SPATIAL_MODES)}")
    scale = float(getattr(record, "scale", 1.0))
    return [] if scale == 1.0 else [Zoomd(keys, zoom=scale, mode=mode, keep_size=False)]


def image_transforms(record: TrainingRecord, keys: Sequence[str] = ("image",)) -> list:
    """Channel-first image → ``in_channels`` channels, resized (see module doc), scaled to ``normalised_range``."""
    (a_min, a_max), (b_min, b_max) = record.intensity_range, record.normalised_range
    return [
        EnsureChannelsd(keys, channels=record.in_channels),
        *_spatial(record, keys, "area"),
        ScaleIntensityRanged(keys, a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=True),
        EnsureTyped(keys, dtype=torch.float32),
    ]


def label_transforms(record: TrainingRecord, keys: Sequence[str] = ("label",), resize: bool = True,
                     dtype: torch.dtype = torch.float32) -> list:
    """Any mask → one 0/1 channel (``> label_threshold``) of ``dtype``, resized with nearest neighbour unless
    ``resize=False``."""
    return [
        BinarizeLabeld(keys, threshold=record.label_threshold),
        *(_spatial(record, keys, "nearest") if resize else []),
        EnsureTyped(keys, dtype=dtype),
    ]


def _load(record: TrainingRecord) -> list:
    return [image2d_loader("image"), image2d_loader("label", label=True), CheckSameSized(("image", "label")),
            CheckBinaryLabeld("label", threshold=record.label_threshold), FillNonFinited("image"),
            ScaleBitDepthd("image", bit_depth=getattr(record, "bit_depth", 8))]


def training_preprocessing(record: TrainingRecord) -> Compose:
    """Load an ``{"image", "label"}`` item (PNG/JPG/BMP/TIFF, read as inference reads them:
    :class:`medseg_masksup.io.read_image2d.Image2DReader`) and prepare both (deterministic, cacheable).

    Palette and other colour modes become RGB; 8-bit pictures are kept on 0..255 and deeper ones scaled from
    ``record.bit_depth`` onto it; NaN / inf values are replaced (:mod:`.intensity`), exactly as inference does.
    The last transform returns the freed heap to the system, so a cache of the results stays near its size.
    Errors name the files: an unreadable file, an image and mask of different sizes, or a grey-level mask
    that the default ``label_threshold`` 0 would read as almost all foreground. In ``patch``
    mode images smaller than a patch are padded (with 0, mid-grey after normalisation) so crops fit.
    """
    pad = [SpatialPadd(("image", "label"), spatial_size=record.img_size)] if record.spatial_mode == "patch" else []
    return Compose([*_load(record), *image_transforms(record), *label_transforms(record), *pad, ReturnFreedMemory()])


def validation_preprocessing(record: TrainingRecord) -> Compose:
    """Like training's, but the label stays at its native resolution: validation scores what ``evaluate`` scores.
    It is kept as ``uint8`` 0/1 (the metrics read it alike): a native-size label is most of a cached
    validation item, a quarter of it as float32."""
    return Compose([*_load(record), *image_transforms(record),
                    *label_transforms(record, resize=False, dtype=torch.uint8), ReturnFreedMemory()])


def make_inferer(record: TrainingRecord, sw_batch_size: int = 4, overlap: float = WINDOW_OVERLAP) -> Inferer:
    """Whole-image forward (``resize`` mode) or an ``img_size`` sliding window with Gaussian blending (``patch``)."""
    if getattr(record, "spatial_mode", "resize") == "patch":
        return SlidingWindowInferer(roi_size=list(record.img_size), sw_batch_size=sw_batch_size, overlap=overlap,
                                    mode=WINDOW_BLEND)
    return SimpleInferer()
