"""The settings of the quality passes and the candidate per-case scores they give.

A case is predicted once as usual (the *plain* prediction, the one its mask comes from) and again on
perturbed copies of its network input (the *passes*): the two flips of the image axes (``flips``), ``k``
copies with a seeded share ``mask_ratio`` hidden by the training mask generator (``masks``), or both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import UserError
from ..method.masking import MASK_KINDS

#: which perturbed passes run besides the plain prediction
PASS_KINDS = ("flips", "masks", "both")
#: flips of the network input's spatial axes (``(B, C, H, W)``): vertical, horizontal
FLIP_DIMS = ((2,), (3,))


@dataclass(frozen=True)
class Score:
    """A candidate per-case score: its name, whether a higher value means a more trustworthy mask, and what it is."""

    name: str
    higher_is_better: bool
    needs: str  # "flips", "masks" or "" (any passes)
    meaning: str


SCORES = {
    s.name: s for s in (
        Score("flip_agreement", True, "flips", "mean Dice of the flip predictions with the plain one"),
        Score("mask_agreement", True, "masks", "mean Dice of the K masked-input predictions with the plain one"),
        Score("entropy", False, "", "mean binary entropy (bits) of the plain prediction"),
        Score("pixel_variance", False, "", "mean per-pixel variance of the probabilities across all passes"),
    )
}


@dataclass(frozen=True)
class QualitySettings:
    """How the quality passes run (see the module doc); checked on construction, one line per problem.

    Args:
        passes: ``flips``, ``masks`` or ``both``.
        k: number of masked passes (used with ``masks`` / ``both``).
        mask_ratio: share of the network input hidden in each masked pass, in (0, 1).
        mask_kind: the training mask kind used to hide it (``freeform``, ``patch``, ``block``).
        seed: base seed; each case's masks are seeded by it and the case's own content.
    """

    passes: str = "both"
    k: int = 8
    mask_ratio: float = 0.25
    mask_kind: str = "freeform"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.passes not in PASS_KINDS:
            raise UserError(f"unknown uncertainty passes {self.passes!r}; choose one of {', '.join(PASS_KINDS)}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= 64:
            raise UserError(f"uncertainty K (masked passes) must be a whole number from 1 to 64, got {self.k!r}")
        if isinstance(self.mask_ratio, bool) or not isinstance(self.mask_ratio, (int, float)) \
                or not 0.0 < float(self.mask_ratio) < 1.0:
            raise UserError(f"uncertainty mask ratio must lie strictly between 0 and 1, got {self.mask_ratio!r}")
        if self.mask_kind not in MASK_KINDS:
            raise UserError(f"unknown uncertainty mask kind {self.mask_kind!r}; choose one of {', '.join(MASK_KINDS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"uncertainty seed must be a whole number >= 0, got {self.seed!r}")
        object.__setattr__(self, "mask_ratio", float(self.mask_ratio))

    @property
    def flips(self) -> bool:
        return self.passes in ("flips", "both")

    @property
    def masks(self) -> bool:
        return self.passes in ("masks", "both")

    @property
    def n_passes(self) -> int:
        """Perturbed passes per case (the plain prediction not counted)."""
        return (len(FLIP_DIMS) if self.flips else 0) + (self.k if self.masks else 0)

    @property
    def scores(self) -> tuple[str, ...]:
        """The candidate scores these passes give, in :data:`SCORES` order."""
        ran = {"", *(["flips"] if self.flips else []), *(["masks"] if self.masks else [])}
        return tuple(name for name, score in SCORES.items() if score.needs in ran)

    @property
    def default_score(self) -> str:
        """The score reported when no review threshold chose one: flip agreement, else masked agreement."""
        return "flip_agreement" if self.flips else "mask_agreement"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One phrase, e.g. ``2 flips + 8 masks (freeform, 25 %), seed 0``."""
        parts = ([f"{len(FLIP_DIMS)} flips"] if self.flips else []) + (
            [f"{self.k} masks ({self.mask_kind}, {100 * self.mask_ratio:g} %)"] if self.masks else [])
        return f"{' + '.join(parts)}, seed {self.seed}"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "settings") -> QualitySettings:
        """Settings from a dict (e.g. a ``quality.json``); unknown names are refused in one line naming ``source``."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{source}: unknown uncertainty setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def build(cls, base: QualitySettings | None = None, **overrides: Any) -> QualitySettings:
        """``base`` (or the defaults) with the ``overrides`` that are not ``None`` applied."""
        values = {**(base.as_dict() if base is not None else {}), **{k: v for k, v in overrides.items() if v is not None}}
        return cls.from_dict(values)


def score_info(name: str) -> Score:
    """The :class:`Score` called ``name``; an unknown name is refused in one line."""
    if name not in SCORES:
        raise UserError(f"unknown quality score {name!r}; choose one of {', '.join(SCORES)}")
    return SCORES[name]
