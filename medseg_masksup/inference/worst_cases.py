"""The N worst cases of an evaluation (lowest Dice), kept while cases stream by and drawn as overlays."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class WorstCases:
    """Keeps the image and masks of the ``n`` cases with the lowest Dice seen so far."""

    n: int = 4
    kept: list[tuple[float, str, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, name: str, dice: float, image: np.ndarray, label: np.ndarray, pred: np.ndarray) -> None:
        """Offer one case: ``image`` ``(C, *spatial)`` as read, ``label``/``pred`` ``(*spatial)`` masks."""
        if self.n <= 0 or not math.isfinite(dice):
            return
        if len(self.kept) < self.n or dice < self.kept[-1][0]:
            self.kept.append((float(dice), name, image, np.asarray(label, bool), np.asarray(pred, bool)))
            self.kept.sort(key=lambda case: case[0])
            del self.kept[self.n :]

    def write(self, folder: str | Path, prefix: str = "worst") -> list[Path]:
        """``<prefix>_<rank>_<case>.png`` per kept case, worst first: image | truth | prediction | both."""
        from ..training.figures import case_overlay
        from ..io.overlay import display_rgb, overlay_slice_index

        paths = []
        for rank, (dice, name, image, label, pred) in enumerate(self.kept, start=1):
            index = overlay_slice_index(label | pred)
            if index is not None:  # a volume: the slice with the most foreground
                image, label, pred = image[..., index], label[..., index], pred[..., index]
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
            paths.append(case_overlay(display_rgb(image), label.T, pred.T, Path(folder) / f"{prefix}_{rank}_{safe}.png",
                                      title=f"worst #{rank}: {name} · Dice {dice:.3f}"))
        return paths
