"""Segment new images with a trained checkpoint.

The checkpoint carries the :class:`TrainingRecord` of its training run; the network and the
preprocessing are rebuilt from it (:meth:`Predictor.from_checkpoint`, :func:`preprocessing`, which calls the
same :func:`medseg_masksup.data.preprocessing.image_transforms` as training), so inference cannot use
another image size, normalisation or network than the one the weights were trained with.

One case (:meth:`Predictor.segment`): the image (``(C, *spatial)``, volumes slice by slice along the
last axis) → optional intensity mapping for inputs outside the training range → training
preprocessing → backbone (optionally averaged over flips) → sigmoid → back to the input grid →
threshold → optional largest-component / hole filling (MONAI transforms) → mask on the input grid.

Ways to handle the input size (``mode``); the default ``"auto"`` does what the model was trained for
(``sliding`` for ``patch``-mode records, at the record's ``scale``; ``resize`` otherwise):

- ``"resize"``: the whole image is resized to the training ``img_size``, exactly as in
  training, and the probability map is resized back (bilinear) before thresholding. Right for
  models trained on whole images resized to ``img_size`` (``spatial_mode`` ``resize``, the bundle
  default), because objects then appear at the scale the model learned.
- ``"sliding"``: no squashing; ``img_size`` windows slide over the image (25 % overlap, Gaussian
  blending) at native resolution, or resized by ``scale`` for ``patch``-mode models (the way those
  are trained and validated). On whole-image-trained (``resize``) models objects would appear larger
  than the model has ever seen.

Several checkpoints (fold models) form an ensemble: their probabilities are averaged (after TTA, if
asked) before thresholding, as nnU-Net does; they must share the preprocessing of their records.

:func:`medseg_masksup.inference.folder.run_folder` applies this to a file or folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_ensemble
from ..data.preprocessing import image_transforms
from ..devices import choose_device
from ..io.intensity import image_bit_depth
from ..record import TrainingRecord
from .options import InferenceOptions



def effective_mode(record: TrainingRecord, mode: str = "auto") -> str:
    """``resize`` or ``sliding``: ``auto`` follows the record (``patch``-mode models slide)."""
    if mode != "auto":
        return mode
    return "sliding" if getattr(record, "spatial_mode", "resize") == "patch" else "resize"


def preprocessing(record: TrainingRecord, mode: str = "auto"):
    """Training's image preprocessing from the record: ``resize`` squashes to ``img_size``; ``sliding``
    keeps the aspect ratio (native pixels, or the record's ``scale`` for ``patch``-mode models)."""
    from dataclasses import replace

    from monai.transforms import Compose, Resized

    mode = effective_mode(record, mode)
    if mode == "resize":
        return Compose(image_transforms(replace(record, spatial_mode="resize"), keys=("image",)))
    return Compose([t for t in image_transforms(record, keys=("image",)) if not isinstance(t, Resized)])


def map_intensity(image: np.ndarray, record: TrainingRecord, window: Sequence[float] | None = None,
                  stored_bits: int | None = None):
    """Bring an image's values onto the training intensity range, as training did.

    ``window=(low, high)`` maps that range linearly onto ``record.intensity_range`` (values outside
    are clipped later by the training preprocessing). Without a window, values are first scaled from the
    image's bit depth onto the 8-bit scale, exactly as training scaled them: 8 for an image stored in
    8 bits (``stored_bits``), else the recorded ``bit_depth`` (:func:`medseg_masksup.io.intensity.image_bit_depth`);
    an image still outside the training range afterwards (deeper than the training data,
    CT, float) has its own min..max mapped onto the range. Returns the image and the source range used
    (``None`` when nothing was changed).
    """
    from ..record import bit_scale

    a_min, a_max = (float(v) for v in record.intensity_range)
    if window is None:
        depth = image_bit_depth(int(getattr(record, "bit_depth", 8)), stored_bits)
        scaled = image * np.float32(bit_scale(depth)) if depth != 8 else image
        lo, hi = float(np.min(image)), float(np.max(image))
        if float(np.min(scaled)) >= a_min and float(np.max(scaled)) <= a_max:
            return (scaled.astype(np.float32), [0.0, float(2**depth - 1)]) if depth != 8 else (image, None)
    else:
        lo, hi = (float(v) for v in window)
    scale = (a_max - a_min) / (hi - lo) if hi > lo else 0.0
    return ((image - lo) * scale + a_min).astype(np.float32), [lo, hi]


def to_input_grid(maps: torch.Tensor, native: Sequence[int]) -> torch.Tensor:
    """``(B, 1, *network grid)`` maps back onto the input plane ``native`` (bilinear), as probabilities are."""
    if tuple(maps.shape[2:]) != tuple(native):
        maps = torch.nn.functional.interpolate(maps, size=tuple(native), mode="bilinear", align_corners=False)
    return maps


class Predictor:
    """Probabilities and masks for images of any size, from a backbone and its training record."""

    def __init__(self, network: nn.Module | Sequence[nn.Module], record: TrainingRecord,
                 options: InferenceOptions | None = None, device: str | torch.device = "cpu", transform=None) -> None:
        networks = list(network) if isinstance(network, (list, tuple)) else [network]
        self.networks = [net.to(device).eval() for net in networks]
        self.network = self.networks[0]
        self.record = record
        self.options = options or InferenceOptions()
        self.device = torch.device(device)
        self.mode = effective_mode(record, self.options.mode)
        self.transform = transform if transform is not None else preprocessing(record, self.mode)
        self.threshold = float(self.options.threshold if self.options.threshold is not None else record.prob_threshold)

    @classmethod
    def from_checkpoint(cls, ckpt: str | os.PathLike | Sequence[str | os.PathLike],
                        options: InferenceOptions | None = None, device: str | torch.device | None = None) -> Predictor:
        """The predictor of a checkpoint (``model.pt`` or a training run folder), or of several as an ensemble:
        networks and record from the files (:func:`~medseg_masksup.checkpoint.load_ensemble`), on ``device``
        (default: ``options.device``, else CUDA when available). Infer, evaluate, robustness, the study report and
        the bundles build their predictor here."""
        options = options or InferenceOptions()
        device = choose_device(options.device if device is None else device)
        networks, record = load_ensemble(ckpt, device)
        return cls(networks, record, options, device)

    def _logits(self, network: nn.Module, x: torch.Tensor) -> torch.Tensor:
        from ..method.wrapper import primary_output

        if self.mode == "resize":
            return primary_output(network(x))
        from monai.inferers import sliding_window_inference

        from ..data.preprocessing import WINDOW_BLEND

        return sliding_window_inference(
            x, roi_size=list(self.record.img_size), sw_batch_size=self.options.batch_size,
            predictor=lambda t: primary_output(network(t)), overlap=self.options.overlap, mode=WINDOW_BLEND,
        )

    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the backbone output, averaged over the ensemble and, with ``tta``, the flips of both axes."""
        flips: list[tuple[int, ...]] = [()] + ([(2,), (3,), (2, 3)] if self.options.tta else [])
        total = torch.zeros((x.shape[0], 1, *x.shape[2:]), device=x.device)
        for network in self.networks:
            for dims in flips:
                xi = torch.flip(x, dims) if dims else x
                prob = torch.sigmoid(self._logits(network, xi))
                total += torch.flip(prob, dims) if dims else prob
        return total / (len(flips) * len(self.networks))

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray, observe: Callable[[torch.Tensor, torch.Tensor], None] | None = None
                      ) -> np.ndarray:
        """Foreground probability ``(*spatial)`` for an image ``(C, *spatial)`` (3D: slice by slice).

        ``observe(x, prob)``, if given, sees each batch of network inputs and its probabilities at the network's
        resolution, before they are taken back to the input grid (:func:`to_input_grid`); it changes nothing."""
        image = np.nan_to_num(np.asarray(image, dtype=np.float32))
        planes = [image] if image.ndim == 3 else [image[..., k] for k in range(image.shape[-1])]
        native = planes[0].shape[1:]
        out = []
        for start in range(0, len(planes), self.options.batch_size):
            batch = [self.transform({"image": torch.from_numpy(p)})["image"] for p in planes[start : start + self.options.batch_size]]
            x = torch.stack([b.as_tensor() if hasattr(b, "as_tensor") else torch.as_tensor(b) for b in batch])
            x = x.to(self.device, torch.float32)  # plain tensors: no MONAI metadata tracking in the forward pass
            prob = self._probabilities(x)
            if observe is not None:
                observe(x, prob)
            out.append(to_input_grid(prob, native)[:, 0].float().cpu().numpy())
        probs = np.concatenate(out, axis=0)
        return probs[0] if image.ndim == 3 else np.moveaxis(probs, 0, -1)

    def postprocess(self, mask: np.ndarray) -> np.ndarray:
        """Largest connected component and/or hole filling (MONAI, full connectivity), if enabled."""
        if not (self.options.keep_largest or self.options.fill_holes):
            return mask
        from monai.transforms import FillHoles, KeepLargestConnectedComponent

        tensor = torch.from_numpy(mask.astype(np.uint8))[None]
        if self.options.keep_largest:
            tensor = KeepLargestConnectedComponent(applied_labels=[1], is_onehot=False)(tensor)
        if self.options.fill_holes:
            tensor = FillHoles(applied_labels=[1])(tensor)
        return np.asarray(tensor[0]).astype(bool)

    def segment(self, image: np.ndarray, stored_bits: int | None = None,
                observe: Callable[[torch.Tensor, torch.Tensor], None] | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[float] | None]:
        """Mask (bool, ``(*spatial)``), probability map and the intensity range mapped from (or ``None``);
        ``stored_bits``: the input's bits per value as stored (``Case.stored_bits``; 8 is read as 0..255);
        ``observe``: see :meth:`probabilities` (the quality passes, :mod:`medseg_masksup.quality.passes`)."""
        image, mapped_from = map_intensity(np.asarray(image, dtype=np.float32), self.record, self.options.intensity_window,
                                           stored_bits)
        prob = self.probabilities(image, observe)
        mask = self.postprocess(prob >= self.threshold)  # >=, as MONAI's AsDiscrete in training validation
        return mask, prob, mapped_from
