"""The ``--uncertainty`` flags shared by ``infer`` and ``evaluate``, declared once."""

from __future__ import annotations

import argparse
from typing import Any

from .settings import PASS_KINDS, QualitySettings

#: command-line flag → :class:`QualitySettings` field
FLAGS = {"uncertainty_passes": "passes", "uncertainty_k": "k", "uncertainty_mask_ratio": "mask_ratio"}


def add_uncertainty_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--uncertainty`` and the pass settings (default: ``None``, i.e. the quality file's or the defaults)."""
    d = QualitySettings()
    parser.add_argument("--uncertainty", action="store_true", help=what)
    parser.add_argument("--uncertainty_passes", default=None, choices=PASS_KINDS,
                        help=f"perturbed passes beside the plain prediction (default: as in the checkpoint's quality.json, "
                             f"else {d.passes})")
    parser.add_argument("--uncertainty_k", type=int, default=None, metavar="K",
                        help=f"masked-input passes (default: as in quality.json, else {d.k})")
    parser.add_argument("--uncertainty_mask_ratio", type=float, default=None, metavar="R",
                        help=f"share of the input hidden in each masked pass (default: as in quality.json, else {d.mask_ratio})")


def uncertainty_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The pass settings given on the command line (``None`` where not given), by :class:`QualitySettings` field."""
    return {field: getattr(args, flag, None) for flag, field in FLAGS.items()}
