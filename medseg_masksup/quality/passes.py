"""Seeded quality passes beside a case's plain prediction: per-case scores and an uncertainty map.

:func:`assess` segments a case exactly as :meth:`Predictor.segment <medseg_masksup.inference.predictor.Predictor.segment>`
does (the mask is the same array, from the same call) while a :class:`PassCollector` watches each batch of
network inputs ``x`` and its plain probabilities. For each batch the collector runs the perturbed passes of
:class:`~medseg_masksup.quality.settings.QualitySettings` at the network's resolution: the flips of both image
axes (predicted and flipped back) and ``k`` copies of ``x`` with a share ``mask_ratio`` hidden by the training
:class:`~medseg_masksup.method.masking.MaskGenerator` (holes set to 0, mid-grey, as in training). A pass is one
forward of each network (the ensemble's mean), without TTA; the plain prediction is the mask's own (TTA and
ensemble included).

Masks are seeded by ``settings.seed`` and the content of the plane's network input (SHA-256), generated on
the CPU: the same input gives the same masks and map on any device, whatever the batch size or file name.

Scores (all at the network's resolution, over every plane of the case):
``flip_agreement`` / ``mask_agreement``: mean over the passes of the Dice between the pass's thresholded
prediction and the plain one (both empty: 1); ``entropy``: mean binary entropy (bits) of the plain
probabilities; ``pixel_variance``: mean over pixels of the variance of the probabilities across the plain
prediction and all passes. The uncertainty map is the binary entropy (bits, 0–1) of the mean probability over
the plain prediction and all passes, taken back to the input grid the way probabilities are
(:func:`~medseg_masksup.inference.predictor.to_input_grid`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from ..method.masking import MaskGenerator
from .settings import FLIP_DIMS, QualitySettings


def binary_entropy(prob: torch.Tensor) -> torch.Tensor:
    """Entropy in bits of Bernoulli probabilities (0 at 0 and 1, 1 at 0.5)."""
    p = prob.clamp(0.0, 1.0)
    return -(torch.special.xlogy(p, p) + torch.special.xlogy(1 - p, 1 - p)) / np.log(2.0)


def plane_seed(base: int, plane: torch.Tensor) -> int:
    """A seed from ``base`` and the bytes of one plane's network input (the same plane gives the same seed)."""
    digest = hashlib.sha256(np.ascontiguousarray(plane.detach().float().cpu().numpy()).tobytes()).digest()
    words = np.frombuffer(digest[:16], dtype=np.uint32)
    return int(np.random.SeedSequence([int(base), *map(int, words)]).generate_state(1)[0])


def agreement(intersection: float, size: float, reference_size: float) -> float:
    """Dice of a pass with the plain prediction from their counts (both empty: 1)."""
    total = size + reference_size
    return 1.0 if total == 0 else float(2.0 * intersection / total)


@dataclass
class PassCollector:
    """The ``observe`` hook of :meth:`Predictor.probabilities`: runs the passes on each batch and keeps the counts."""

    predictor: object
    settings: QualitySettings
    native: tuple[int, ...]
    counts: list[list] = field(default_factory=list)  # per pass: [kind, intersection with plain, foreground]
    reference_size: float = 0.0
    entropy_sum: float = 0.0
    variance_sum: float = 0.0
    pixels: int = 0
    maps: list[np.ndarray] = field(default_factory=list)

    def _single(self, x: torch.Tensor) -> torch.Tensor:
        """One forward per network (no TTA), sigmoid, ensemble mean: ``(B, 1, *grid)``."""
        nets = self.predictor.networks
        return sum(torch.sigmoid(self.predictor._logits(net, x)) for net in nets) / len(nets)

    def _masks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``k`` occlusion masks ``(B, 1, *grid)`` for the batch, each plane's from its own seeded generator."""
        s = self.settings
        generators = [MaskGenerator(s.mask_kind, s.mask_ratio, seed=plane_seed(s.seed, plane)) for plane in x]
        shape = (1, 1, *x.shape[2:])
        return [torch.cat([g(shape) for g in generators]).to(x.device, x.dtype) for _ in range(s.k)]

    def passes(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """``(kind, probabilities)`` of every perturbed pass on batch ``x``."""
        out = []
        if self.settings.flips:
            out += [("flips", torch.flip(self._single(torch.flip(x, dims)), dims)) for dims in FLIP_DIMS]
        if self.settings.masks:
            out += [("masks", self._single(x * (1 - m))) for m in self._masks(x)]
        return out

    def __call__(self, x: torch.Tensor, prob: torch.Tensor) -> None:
        from ..inference.predictor import to_input_grid

        threshold = self.predictor.threshold
        plain = prob.float()
        reference = plain >= threshold
        self.reference_size += float(reference.sum())
        runs = self.passes(x)
        if not self.counts:
            self.counts = [[kind, 0.0, 0.0] for kind, _ in runs]
        for entry, (_, p) in zip(self.counts, runs):
            binary = p >= threshold
            entry[1] += float((binary & reference).sum())
            entry[2] += float(binary.sum())
        stack = torch.stack([plain, *(p.float() for _, p in runs)])
        self.variance_sum += float(stack.var(dim=0, unbiased=False).sum(dtype=torch.float64))
        self.entropy_sum += float(binary_entropy(plain).sum(dtype=torch.float64))
        self.pixels += plain.numel()
        self.maps.append(to_input_grid(binary_entropy(stack.mean(dim=0)), self.native)[:, 0].float().cpu().numpy())

    def scores(self) -> dict[str, float]:
        """The case's scores (:attr:`QualitySettings.scores`)."""
        out = {}
        for kind, name in (("flips", "flip_agreement"), ("masks", "mask_agreement")):
            values = [agreement(i, n, self.reference_size) for k, i, n in self.counts if k == kind]
            if values:
                out[name] = float(np.mean(values))
        pixels = max(self.pixels, 1)
        out["entropy"] = self.entropy_sum / pixels
        out["pixel_variance"] = self.variance_sum / pixels
        return {name: out[name] for name in self.settings.scores}

    def uncertainty_map(self, volume: bool) -> np.ndarray:
        """The map on the input grid: ``(*plane)`` for a 2D image, ``(*plane, slices)`` for a volume."""
        maps = np.concatenate(self.maps, axis=0)
        return np.moveaxis(maps, 0, -1) if volume else maps[0]


@dataclass
class Assessment:
    """A case's mask, probabilities and intensity mapping (as ``segment`` returns them), its scores and map."""

    mask: np.ndarray
    prob: np.ndarray
    mapped_from: list[float] | None
    scores: dict[str, float]
    uncertainty: np.ndarray


def assess(predictor, image: np.ndarray, settings: QualitySettings, stored_bits: int | None = None) -> Assessment:
    """Segment ``image`` (``(C, *spatial)``) with ``predictor`` exactly as ``segment`` does, plus the quality passes."""
    image = np.asarray(image)
    collector = PassCollector(predictor, settings, tuple(int(s) for s in image.shape[1:3]))
    mask, prob, mapped_from = predictor.segment(image, stored_bits, observe=collector)
    return Assessment(mask, prob, mapped_from, collector.scores(), collector.uncertainty_map(image.ndim == 4))
