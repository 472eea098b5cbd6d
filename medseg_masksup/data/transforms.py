"""Dictionary transforms MONAI lacks for 2D RGB segmentation data."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform


class EnsureChannelsd(MapTransform):
    """Give channel-first images exactly ``channels`` channels: grey is repeated, alpha is dropped."""

    def __init__(self, keys: KeysCollection, channels: int = 3, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.channels = channels

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            have = img.shape[0]
            if have == self.channels:
                continue
            if have == 1:
                d[key] = img.repeat(self.channels, *([1] * (img.ndim - 1)))
            elif have > self.channels and self.channels in (1, 3):
                d[key] = img[: self.channels]  # RGBA → RGB, or first channel for grey models
            else:
                raise ValueError(f"'{key}' has {have} channels; cannot make {self.channels} from it")
        return d


class BinarizeLabeld(MapTransform):
    """Turn any mask (0/1, 0/255, instance ids, RGB) into one float channel of 0/1: ``first channel > threshold``."""

    def __init__(self, keys: KeysCollection, threshold: float = 0.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = (d[key][:1] > self.threshold).float()
        return d


class CheckSameSized(MapTransform):
    """Refuse an item whose arrays differ in spatial size (an image and a mask that do not belong together)."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        shapes = {key: tuple(d[key].shape[1:]) for key in self.key_iterator(d)}
        if len(set(shapes.values())) > 1:
            names = ", ".join(f"{_source(d[k], k)} is {'x'.join(map(str, s))}" for k, s in shapes.items())
            raise ValueError(f"size mismatch: {names}")
        return d


def _source(value, key) -> str:
    meta = getattr(value, "meta", None) or {}
    return f"{key} {meta.get('filename_or_obj', '')}".strip()


#: PIL modes read as they are; the others are converted first (palette colours, CMYK, bilevel...).
_PIL_CONVERT = {"1": "L", "LA": "L", "P": "RGB", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


def standard_mode(image):
    """A PIL image in L / RGB / RGBA (16-bit and float modes untouched): palette indices become colours."""
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert(_PIL_CONVERT[image.mode]) if image.mode in _PIL_CONVERT else image


class ScaleBitDepthd(MapTransform):
    """Bring 16-bit (and 32-bit integer) pictures to the 8-bit scale, full range to full range; floats."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if img.dtype in (torch.int16, torch.int32, torch.uint16) or str(img.dtype) == "torch.uint16":
                img = img.float() * (255.0 / 65535.0)
            d[key] = img.float()
        return d


class MatchSpatialSized(MapTransform):
    """Resize ``keys`` (e.g. the predicted probabilities) to the spatial size of ``reference_key`` (the label).

    Bilinear on probabilities before thresholding, as inference does, so validation scores at the
    label's native resolution.
    """

    def __init__(self, keys: KeysCollection, reference_key: str = "label", mode: str = "bilinear") -> None:
        super().__init__(keys)
        self.reference_key = reference_key
        self.mode = mode

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        size = tuple(d[self.reference_key].shape[1:])
        for key in self.key_iterator(d):
            value = d[key]
            if tuple(value.shape[1:]) != size:
                plain = value.as_tensor() if hasattr(value, "as_tensor") else value
                d[key] = torch.nn.functional.interpolate(plain[None].float(), size=size, mode=self.mode,
                                                         align_corners=False)[0]
        return d
