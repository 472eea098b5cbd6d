"""Dictionary transforms MONAI lacks for 2D RGB segmentation data."""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping

import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from ..io.intensity import NonFiniteImageError, fill_nonfinite, image_bit_depth, stored_bits_of_dtype
from ..io.labels import binarise_label


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
    """Turn any mask (0/1, 0/255, instance ids, RGB) into one float channel of 0/1: ``first channel > threshold``
    (:func:`medseg_masksup.io.labels.binarise_label`, the rule evaluation applies; a mask with NaN / inf values is
    refused, naming its file)."""

    def __init__(self, keys: KeysCollection, threshold: float = 0.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = binarise_label(d[key], self.threshold, _source(d[key], key)).float()
        return d


#: largest share of a mask's pixels allowed between 1/4 and 3/4 of its full scale under the default
#: ``label_threshold`` 0 (JPEG-noisy edges pass, a grey-level or probability picture does not)
MAX_MID_GREY_FRACTION = 0.05


class CheckBinaryLabeld(MapTransform):
    """Refuse a mask that ``first channel > threshold`` would not read as intended: with the default threshold 0,
    one whose first channel has more than :data:`MAX_MID_GREY_FRACTION` of its pixels between 1/4 and 3/4 of
    its full scale (1, 255 or 65535) — a grey-level picture, where "> 0" would make almost everything
    foreground. A threshold above 0 is the user's explicit rule and accepts any mask. The error names the
    file and the ``--label_threshold`` (half the full scale) that would accept it."""

    def __init__(self, keys: KeysCollection, threshold: float = 0.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.threshold = threshold

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        d = dict(data)
        if self.threshold > 0:
            return d
        for key in self.key_iterator(d):
            first = torch.as_tensor(d[key][:1]).float()
            top = float(first.max()) if first.numel() else 0.0
            scale = 1.0 if top <= 1 else 255.0 if top <= 255 else 65535.0
            grey = ((first > scale / 4) & (first < 3 * scale / 4)).float().mean().item() if first.numel() else 0.0
            if grey > MAX_MID_GREY_FRACTION:
                from .datalist import DatalistError

                half = 0.5 if scale == 1.0 else int(scale) // 2
                raise DatalistError(
                    f"mask {_source(d[key], key).split(' ', 1)[-1]} is not binary: {grey:.0%} of its pixels are "
                    f"grey levels between {scale / 4:g} and {3 * scale / 4:g}, so '> 0' would make them all foreground; "
                    f"binarize it (medseg-masksup prepare) or pass --label_threshold {half} to take values above {half} "
                    "as foreground"
                )
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


class ScaleBitDepthd(MapTransform):
    """Bring pictures to the 8-bit scale, full range to full range, as floats: an image loaded as ``uint8``
    (stored in 8 bits) is kept as it is; a deeper one is scaled from ``bit_depth`` (``0 .. 2**bit_depth - 1``
    onto ``0 .. 255``). The bit depth is the training record's and the rule
    :func:`medseg_masksup.io.intensity.image_bit_depth`, so inference scales alike."""

    def __init__(self, keys: KeysCollection, bit_depth: int = 8, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.bit_depth = int(bit_depth)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        from ..record import bit_scale

        d = dict(data)
        for key in self.key_iterator(d):
            depth = image_bit_depth(self.bit_depth, stored_bits_of_dtype(d[key].dtype))
            img = d[key].float()
            d[key] = img * bit_scale(depth) if depth != 8 else img
        return d


class FillNonFinited(MapTransform):
    """NaN / ±inf values of float images replaced by :func:`medseg_masksup.io.intensity.fill_nonfinite` (the rule
    inference applies); an image without a finite value is a ``ValueError`` naming its file."""

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict:
        import numpy as np

        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if not torch.is_floating_point(img) or bool(torch.isfinite(img).all()):
                continue
            plain = img.as_tensor() if hasattr(img, "as_tensor") else img
            array = np.array(plain.detach().cpu().numpy(), copy=True)
            try:
                fill_nonfinite(array)
            except NonFiniteImageError as err:
                raise ValueError(f"{_source(img, key)}: {err}") from None
            fixed = torch.from_numpy(array)
            d[key] = type(img)(fixed, meta=img.meta) if hasattr(img, "meta") else fixed
        return d


class ReturnFreedMemory(Transform):
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``; a no-op elsewhere), data unchanged.

    Caching a decoded picture leaves a small array behind while the large full-resolution temporaries of its
    preprocessing are freed; the cached arrays pin the heap around those holes, and resident memory grew
    ~9× the cached data (2.3 MB per 0.26 MB item on 775×522 GlaS pictures). Run last in the cached
    preprocessing, after every item, it keeps the cache within ~1.1× its size for ~1 ms an item.
    """

    def __call__(self, data):
        trim = _malloc_trim()
        if trim is not None:
            trim(0)
        return data


@functools.cache
def _malloc_trim():
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


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
