"""The one interface of infer / evaluate / robustness: :class:`InferenceOptions`.

Each option is declared once, here: the commands add them to their parser with
:func:`add_inference_arguments` and read them back with :func:`options_from_args`; the bundles
(``inference.json``, ``evaluate.json``) build the same object with ``_target_``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from ..errors import UserError
from .postprocessing import chosen_keep_largest

MODES = ("auto", "resize", "sliding")


@dataclass
class InferenceOptions:
    """How to run the network and turn its outputs into masks.

    Args:
        tta: average predictions over the flips of both image axes.
        threshold: probability threshold; ``None`` uses the record's ``prob_threshold``.
        keep_largest: keep only the largest connected component.
        fill_holes: fill holes inside the mask.
        mode: ``auto`` (as the model was trained: ``sliding`` for ``patch``-mode records, else ``resize``),
            ``resize`` the whole image to the training size, or slide training-size windows (``sliding``).
        overlap: window overlap in ``sliding`` mode.
        batch_size: slices / windows per forward pass.
        intensity_window: ``(low, high)`` mapped onto the training intensity range.
        device: ``cpu``, ``cuda``, ``cuda:1`` …; ``None`` picks CUDA when available.
        progress: show a progress bar.
    """

    tta: bool = False
    threshold: float | None = None
    keep_largest: bool = False
    fill_holes: bool = False
    mode: str = "auto"
    overlap: float = 0.25
    batch_size: int = 8
    intensity_window: Sequence[float] | None = None
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.threshold is not None and not 0.0 < float(self.threshold) < 1.0:
            raise UserError(f"threshold must lie strictly between 0 and 1, got {self.threshold}")
        if self.intensity_window is not None:
            window = [float(v) for v in self.intensity_window]
            if len(window) != 2 or not window[0] < window[1]:
                raise UserError(f"intensity_window must be two numbers low < high, got {list(self.intensity_window)}")
            self.intensity_window = window
        if not 0.0 <= self.overlap < 1.0:
            raise UserError(f"overlap must be in [0, 1), got {self.overlap}")
        self.batch_size = int(self.batch_size)
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")
        self.tta, self.keep_largest, self.fill_holes = bool(self.tta), bool(self.keep_largest), bool(self.fill_holes)

    @classmethod
    def build(cls, options: InferenceOptions | None = None, **overrides) -> InferenceOptions:
        """``options`` (or the defaults) with ``overrides`` applied; unknown names are a :class:`UserError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserError(f"unknown inference option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        base = {f.name: getattr(options, f.name) for f in fields(cls)} if options is not None else {}
        return cls(**{**base, **overrides})

    def summary(self, threshold: float, mode: str | None = None) -> dict:
        """The options as recorded in summaries (the threshold, and where given the mode, actually used)."""
        return {"tta": self.tta, "threshold": threshold, "keep_largest": self.keep_largest, "fill_holes": self.fill_holes,
                "mode": mode or self.mode, "intensity_window": self.intensity_window}


#: the options a command may expose, in the order they appear in ``--help``
ARGUMENTS = ("tta", "threshold", "keep_largest", "fill_holes", "mode", "intensity_window", "batch_size", "device", "progress")


def add_inference_arguments(parser: argparse.ArgumentParser, names: Iterable[str] = ARGUMENTS) -> argparse.ArgumentParser:
    """Add the command-line flags of the chosen :class:`InferenceOptions` fields to ``parser``."""
    names = list(names)
    specs = {
        "tta": (("--tta",), dict(action="store_true", help="average predictions over horizontal/vertical flips")),
        "threshold": (("--threshold",), dict(type=float, default=None,
                                             help="probability threshold (default: the one recorded at training, 0.5)")),
        "keep_largest": (("--keep_largest",), dict(action="store_true", help="keep only the largest connected component")),
        "postprocessing": (("--postprocessing",), dict(
            nargs=2, metavar=("POSTPROCESSING_JSON", "ARM"), default=None,
            help="post-process as a study chose for ARM: its report/postprocessing.json from 'compare --keep_largest' "
                 "(keeps the largest component only where the study's held-out cases gained); instead of --keep_largest")),
        "fill_holes": (("--fill_holes",), dict(action="store_true", help="fill holes inside the mask")),
        "mode": (("--mode",), dict(choices=MODES, default="auto",
                                   help="auto (default): as the model was trained; resize: whole image squashed to the "
                                        "training size; sliding: training-size windows over the image at native "
                                        "resolution (or the model's scale)")),
        "intensity_window": (("--intensity_window",), dict(
            type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
            help="map this intensity range onto the training range (default: only inputs outside it, by their min..max)")),
        "batch_size": (("--batch_size",), dict(type=int, default=8, help="slices / windows per forward pass")),
        "device": (("--device",), dict(default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")),
        "progress": (("--no_progress",), dict(action="store_true", help="no progress bar")),
    }
    for name in names:
        flags, kwargs = specs[name]
        parser.add_argument(*flags, **kwargs)
    return parser


def options_from_args(args: argparse.Namespace) -> InferenceOptions:
    """The :class:`InferenceOptions` a parsed command line asks for (flags it lacks keep their defaults)."""
    values = {name: getattr(args, name) for name in ARGUMENTS if name != "progress" and hasattr(args, name)}
    if hasattr(args, "no_progress"):
        values["progress"] = not args.no_progress
    if getattr(args, "postprocessing", None):
        if values.get("keep_largest"):
            raise UserError("--keep_largest and --postprocessing both choose the post-processing; give one of them")
        path, arm = args.postprocessing
        values["keep_largest"] = chosen_keep_largest(path, arm, tta=bool(values.get("tta")))
    return InferenceOptions(**values)
