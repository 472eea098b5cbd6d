"""Scores and the review flag applied to the cases of one ``infer --uncertainty`` run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .review import ReviewFlag, find_review_flag, score_options
from .settings import QualitySettings


@dataclass
class QualityRun:
    """The passes to run, the review flag that applies (or ``None``) and the line saying which, or why none."""

    settings: QualitySettings
    flag: ReviewFlag | None
    note: str

    @classmethod
    def prepare(cls, predictor, checkpoints: str | Path | Sequence[str | Path],
                overrides: dict[str, Any] | None = None) -> QualityRun:
        """Find the checkpoint's ``quality.json`` (see :func:`~.review.find_review_flag`); bad settings or a
        malformed file are refused in one line before any case is read."""
        names = [checkpoints] if isinstance(checkpoints, (str, Path)) else list(checkpoints)
        flag, settings, note = find_review_flag(names, dict(overrides or {}), score_options(predictor))
        return cls(settings, flag, note)

    @property
    def score(self) -> str:
        """The score in ``quality_score``: the flag's, else the settings' default."""
        return self.flag.score if self.flag is not None else self.settings.default_score

    def row(self, scores: dict[str, float]) -> dict[str, Any]:
        """A case's summary fields: ``quality_score``, ``review`` (``None`` without a flag) and every score."""
        value = scores[self.score]
        return {"quality_score": value, "review": self.flag.review(value) if self.flag is not None else None,
                "quality": dict(scores)}

    def summary(self) -> dict[str, Any]:
        """What summary.json records about the passes and the flag."""
        return {"passes": self.settings.as_dict(), "quality_score": self.score,
                "review_flag": self.flag.to_dict() if self.flag is not None else None, "note": self.note}

    def lines(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """The note, and how many cases were flagged for review."""
        if self.flag is None:
            return [self.note]
        scored = [r for r in rows if r.get("review") is not None]
        flagged = sum(1 for r in scored if r["review"])
        return [f"review: {flagged} of {len(scored)} segmented cases flagged, {self.note.split(': ', 1)[1]}"]
