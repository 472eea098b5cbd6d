"""The review flag: a threshold on one quality score, chosen on held-out cases, stored beside the checkpoint.

``<run>/quality.json`` (beside ``model.pt``) holds the score, the threshold and which side of it is flagged, the
coverage it was chosen for (the share of held-out cases *not* flagged), the cases and split it was chosen on,
the settings of the passes and the inference options the scores depend on (TTA, probability threshold, mode),
and the checkpoint's SHA-256. ``infer --uncertainty`` finds it there (:func:`find_review_flag`); without it, or
when it was made for another checkpoint or other settings, ``review`` stays empty and one line says why: a
threshold is never guessed at inference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from .risk_coverage import confidence_of
from .settings import QualitySettings, score_info

QUALITY_FILE = "quality.json"
FORMAT = "medseg-masksup quality 1"
#: the inference options a score's value depends on (keep_largest / fill_holes act after the scores)
SCORE_OPTIONS = ("tta", "threshold", "mode")
#: splits a threshold may be chosen on (never cases the model trained on)
HELD_OUT_SPLITS = ("validation", "heldout", "test")


def score_options(predictor) -> dict[str, Any]:
    """The inference options a score's value depends on, as this predictor applies them."""
    return {"tta": bool(predictor.options.tta), "threshold": float(predictor.threshold), "mode": predictor.mode}


def choose_threshold(values: Sequence[float], score: str, coverage: float) -> tuple[float, float]:
    """The threshold that keeps the ``⌈coverage·N⌉`` most trustworthy cases of ``values`` and flags the rest, and
    the coverage it reaches on them (higher with ties). Midway between the last kept and the first flagged case."""
    if not 0.0 < float(coverage) <= 1.0:
        raise UserError(f"review coverage must lie in (0, 1], got {coverage}")
    info = score_info(score)
    confidence = np.sort(confidence_of(values, info.higher_is_better))[::-1]
    if confidence.size == 0:
        raise UserError("no held-out case to choose the review threshold on")
    n = max(1, math.ceil(float(coverage) * confidence.size - 1e-9))
    last_kept = confidence[n - 1]
    cut = last_kept if n == confidence.size or confidence[n] == last_kept else (last_kept + confidence[n]) / 2
    threshold = float(cut if info.higher_is_better else -cut)
    reached = float((confidence >= cut).mean())
    return threshold, reached


def needs_review(score: str, threshold: float, value: float) -> bool:
    """The review rule: a case is flagged when its ``score`` lies on the untrusted side of ``threshold``."""
    return value < threshold if score_info(score).higher_is_better else value > threshold


@dataclass
class ReviewFlag:
    """A chosen review threshold (the content of ``quality.json``)."""

    score: str
    threshold: float
    coverage: float
    coverage_reached: float
    settings: QualitySettings
    options: dict[str, Any]
    chosen_on: dict[str, Any]
    checkpoint: dict[str, str]
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def review_when(self) -> str:
        return "below" if score_info(self.score).higher_is_better else "above"

    def review(self, value: float) -> bool:
        """Whether a case with this score should be checked by a person."""
        return needs_review(self.score, self.threshold, value)

    def describe(self) -> str:
        """e.g. ``flip_agreement < 0.93 (chosen on 17 validation cases for 90 % coverage)``."""
        sign = "<" if self.review_when == "below" else ">"
        return (f"{self.score} {sign} {self.threshold:.4g} (chosen on {self.chosen_on.get('n_cases', '?')} "
                f"{self.chosen_on.get('split', '')} cases for {100 * self.coverage:g} % coverage)")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "score": self.score, "review_when": self.review_when, "threshold": self.threshold,
                "coverage": self.coverage, "coverage_reached": self.coverage_reached, "passes": self.settings.as_dict(),
                "options": self.options, "chosen_on": self.chosen_on, "checkpoint": self.checkpoint,
                "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: Any, source: Path) -> ReviewFlag:
        """Read a ``quality.json``'s content; anything missing or malformed is one line naming ``source``."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserError(f"{source}: not a medseg-masksup quality file (no \"format\": \"{FORMAT}\")")
        missing = [k for k in ("score", "threshold", "coverage", "passes", "options", "chosen_on", "checkpoint")
                   if k not in data]
        if missing:
            raise UserError(f"{source}: quality file lacks {', '.join(missing)}")
        score_info(data["score"])
        try:
            threshold, coverage = float(data["threshold"]), float(data["coverage"])
        except (TypeError, ValueError):
            raise UserError(f"{source}: threshold and coverage must be numbers") from None
        if not math.isfinite(threshold):
            raise UserError(f"{source}: threshold must be a finite number, got {data['threshold']!r}")
        settings = QualitySettings.from_dict(dict(data["passes"]), str(source))
        if data["score"] not in settings.scores:
            raise UserError(f"{source}: score {data['score']} is not given by its passes ({settings.passes})")
        return cls(data["score"], threshold, coverage, float(data.get("coverage_reached", coverage)), settings,
                   dict(data["options"]), dict(data["chosen_on"]), dict(data["checkpoint"]), dict(data.get("evidence", {})))

    def save(self, path: str | Path) -> Path:
        """Write atomically; an existing file there that is not a quality file of this program is refused."""
        from ..io.atomic import write_json

        path = Path(path)
        if path.exists():
            try:
                ours = json.loads(path.read_text()).get("format") == FORMAT
            except (OSError, ValueError, AttributeError):
                ours = False
            if not ours:
                raise UserError(f"{path} exists and is not a quality file written by medseg-masksup; move it away")
        return write_json(path, self.to_dict())


def load_review_flag(path: str | Path) -> ReviewFlag:
    """A ``quality.json``; unreadable or malformed is a one-line :class:`UserError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise UserError(f"{path}: cannot be read ({err.strerror or err})") from None
    except ValueError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    return ReviewFlag.from_dict(data, path)


def checkpoint_identity(ckpt_path: str | Path) -> dict[str, str]:
    """``{"file", "sha256"}`` of a checkpoint file: what a quality file is tied to."""
    from ..io.manifest import sha256

    path = Path(ckpt_path)
    return {"file": path.name, "sha256": sha256(path)}


def quality_path(ckpt_path: str | Path) -> Path:
    """Where the quality file of a checkpoint lives: ``quality.json`` beside it."""
    return Path(ckpt_path).parent / QUALITY_FILE


def find_review_flag(checkpoints: Sequence[str | Path], overrides: dict[str, Any], options: dict[str, Any]
                     ) -> tuple[ReviewFlag | None, QualitySettings, str]:
    """The review flag that applies to this run, the pass settings to use, and one line on what was found.

    The passes are those of the checkpoint's quality file (else the defaults) with ``overrides`` (``k``, ``passes`` …;
    ``None`` values ignored) applied. Without a single checkpoint, without its ``quality.json``, or with one made for
    another checkpoint, other passes or other ``options`` (:func:`score_options`), the flag is ``None`` and the line
    says why."""
    from ..checkpoint import resolve_checkpoint

    if len(checkpoints) != 1:
        return None, QualitySettings.build(None, **overrides), \
            "no review flag: a review threshold belongs to one checkpoint, not an ensemble"
    ckpt = resolve_checkpoint(checkpoints[0])
    path = quality_path(ckpt)
    if not path.is_file():
        return None, QualitySettings.build(None, **overrides), (
            f"no review flag: {path} not found (choose a threshold on held-out cases with "
            "'medseg-masksup evaluate --uncertainty --write_quality')")
    flag = load_review_flag(path)
    used = QualitySettings.build(flag.settings, **overrides)
    if flag.checkpoint.get("sha256") != checkpoint_identity(ckpt)["sha256"]:
        return None, used, (f"no review flag: {path} was chosen for another {flag.checkpoint.get('file', 'checkpoint')} "
                            "(SHA-256 differs)")
    if used != flag.settings:
        return None, used, (f"no review flag: {path} was chosen with passes {flag.settings.describe()}, "
                            f"this run uses {used.describe()}")
    differing = [k for k in SCORE_OPTIONS if k in flag.options and flag.options[k] != options.get(k)]
    if differing:
        asked = ", ".join(f"{k} {options.get(k)!r} (chosen with {flag.options[k]!r})" for k in differing)
        return None, used, f"no review flag: {path} was chosen with other inference options: {asked}"
    return flag, used, f"review flag from {path}: {flag.describe()}"
