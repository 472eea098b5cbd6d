"""What a study runs: arms (a method and its budget) × seeds × folds, all with the same settings.

Arms:

- ``baseline`` (β = γ = 0), ``context`` (γ = 0), ``masksup`` (the paper's method): same epochs.
- ``baseline-2x``: the *equal-compute* arm. MaskSup runs two forward/backward passes per step (clean and
  masked batch); this baseline gets twice the epochs, hence the same number of passes.

- user-defined arms (``compare --arm NAME METHOD KEY=VALUE ...``): a method with setting overrides of its
  own, e.g. ``masksup-ema masksup ema_decay=0.999``, so a recipe option is measured paired on the same folds.

Every run of a study shares the bundle config files and overrides of the plan; an arm only sets
``method`` and ``epochs`` (a user-defined arm also its own overrides), a run only ``seed`` and ``val_fold``. The plan is saved as ``study.json`` in the
study folder; resuming with other training settings is refused (the runs would not be comparable).
``tta``, ``keep_largest`` and ``uncertainty`` (extra evaluations of each final checkpoint: with flip TTA, keeping
only the largest connected component, with the candidate quality scores) are no training settings: a study may
switch them on later, and then keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError
from ..method import METHODS
from ..training.settings import BY_NAME, unknown_setting


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a training method and its epoch budget relative to the study's ``epochs``."""

    name: str
    method: str
    epoch_factor: int = 1
    overrides: dict = field(default_factory=dict, hash=False)


#: bundle settings the study sets per run; neither the study's nor an arm's overrides may set them
RESERVED = frozenset({"method", "epochs", "seed", "val_fold", "datalist", "output_dir", "tracking_uri", "resume"})

ARMS = {
    "baseline": Arm("baseline", "baseline"),
    "context": Arm("context", "context"),
    "masksup": Arm("masksup", "masksup"),
    "baseline-2x": Arm("baseline-2x", "baseline", epoch_factor=2),
}
#: the arm every other arm is compared with (paired per case)
REFERENCE_ARM = "baseline"


@dataclass(frozen=True)
class RunSpec:
    """One training run of a study."""

    arm: Arm
    seed: int
    fold: int
    epochs: int

    @property
    def key(self) -> str:
        """Folder and MLflow run name: ``<arm>-s<seed>-f<fold>``."""
        return f"{self.arm.name}-s{self.seed}-f{self.fold}"


@dataclass
class StudyPlan:
    """A study: the datalist, the shared training settings and the grid of arms × seeds × folds."""

    name: str
    datalist: str
    epochs: int
    arms: list[str] = field(default_factory=lambda: ["baseline", "masksup"])
    seeds: list[int] = field(default_factory=lambda: [0])
    folds: list[int] = field(default_factory=lambda: [0])
    config_files: list[str] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    eval_split: str = "auto"
    settings: dict = field(default_factory=dict)
    robustness_ratios: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75])
    tta: bool = False
    keep_largest: bool = False
    #: score each final checkpoint's held-out cases with the candidate quality scores (``compare --uncertainty``)
    uncertainty: bool = False
    #: user-defined arms: ``{name: {"method": ..., "overrides": {...}}}``
    custom_arms: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, definition in self.custom_arms.items():
            _check_custom_arm(name, definition)
        unknown = [a for a in self.arms if a not in ARMS and a not in self.custom_arms]
        if unknown:
            raise UserError(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)} "
                            "or define one with --arm NAME METHOD KEY=VALUE ...")
        if not self.arms or not self.seeds or not self.folds:
            raise UserError("a study needs at least one arm, one seed and one fold")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise UserError(f"--epochs must be a positive integer, got {self.epochs!r}")
        clash = sorted(RESERVED & set(self.overrides))
        if clash:
            raise UserError(f"the study sets {', '.join(clash)} itself; remove them from the overrides")

    def arm(self, name: str) -> Arm:
        """The arm called ``name``: a built-in one or one of ``custom_arms``."""
        if name in self.custom_arms:
            definition = self.custom_arms[name]
            return Arm(name, definition["method"], overrides=dict(definition.get("overrides", {})))
        return ARMS[name]

    def runs(self) -> Iterator[RunSpec]:
        """Runs in the order a study should train them: seed by seed, fold by fold, every arm of a fold
        together, so an interrupted study already holds complete paired comparisons."""
        for seed in self.seeds:
            for fold in self.folds:
                for name in self.arms:
                    arm = self.arm(name)
                    yield RunSpec(arm, int(seed), int(fold), self.epochs * arm.epoch_factor)

    def training_settings(self) -> dict:
        """What must be identical for the runs of one study folder to be comparable: the datalist's and the
        config files' *contents* (so a study moved to another checkout or machine still resumes), the budget,
        the overrides and the evaluation."""
        return {"datalist_sha256": _sha256(self.datalist), "epochs": self.epochs,
                "config_sha256": [_sha256(c) for c in self.config_files], "overrides": self.overrides,
                "eval_split": self.eval_split, "robustness_ratios": list(self.robustness_ratios)}

    def save(self, path: Path) -> None:
        from ..io.atomic import write_json

        if not self.settings:
            self.settings = self.training_settings()
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> StudyPlan:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"{path}: not a readable study plan ({err})") from None


def _sha256(path: str) -> str:
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return f"missing:{path}"


def _check_custom_arm(name: str, definition: dict) -> None:
    """A user-defined arm must have a new name, a known method and no setting the study sets itself."""
    if name in ARMS:
        raise UserError(f"arm {name!r} is built in; give the arm you define another name")
    if not name or any(c in name for c in "/\\ ") or name != name.strip("."):
        raise UserError(f"arm name {name!r} must be a plain folder name (no spaces or slashes)")
    if definition.get("method") not in METHODS:
        raise UserError(f"arm {name}: method must be one of {', '.join(sorted(METHODS))}, got {definition.get('method')!r}")
    clash = sorted(RESERVED & set(definition.get("overrides", {})))
    if clash:
        raise UserError(f"arm {name}: the study sets {', '.join(clash)} itself; remove them from the arm's settings")


def parse_custom_arms(definitions: Sequence[Sequence[str]]) -> dict:
    """``--arm NAME METHOD KEY=VALUE ...`` (each a list of words) as ``custom_arms``."""
    arms = {}
    for words in definitions:
        if len(words) < 2:
            raise UserError(f"--arm expects NAME METHOD [KEY=VALUE ...], got {' '.join(words)!r}")
        name, method, *pairs = words
        if name in arms:
            raise UserError(f"arm {name!r} is defined twice")
        arms[name] = {"method": method, "overrides": parse_overrides(pairs, f"--arm {name}")}
        _check_custom_arm(name, arms[name])
    return arms


def check_resumable(saved: StudyPlan, new: StudyPlan, path: Path) -> None:
    """Refuse to continue a study folder with other training settings (arms, seeds and folds may grow; an arm
    the study already defined must keep its definition)."""
    for name in sorted(set(saved.custom_arms) & set(new.custom_arms)):
        if saved.custom_arms[name] != new.custom_arms[name]:
            raise UserError(f"{path} defines arm {name} as {saved.custom_arms[name]!r}, not {new.custom_arms[name]!r}; "
                            "give the new arm another name")
    old, now = saved.settings or saved.training_settings(), new.training_settings()
    changed = [k for k in now if old.get(k) != now[k]]
    if changed:
        details = "; ".join(f"{k}: {old.get(k)!r} -> {now[k]!r}" for k in changed if "sha256" not in k)
        details = "; ".join(filter(None, [details, *(f"{k.split('_')[0]} contents changed" for k in changed if "sha256" in k)]))
        raise UserError(f"{path} holds a study with other settings ({details}); use another --output_dir")


def parse_overrides(pairs: Sequence[str], where: str = "--set") -> dict:
    """``key=value`` pairs (values parsed as JSON when they can be: numbers, lists, booleans).

    A key must name a declared training setting (or a bundle id with ``#``, e.g. ``train#trainer#max_epochs``):
    a typo is refused here, before any run starts, with the closest names."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise UserError(f"{where} expects key=value, got {pair!r}")
        key, value = (part.strip() for part in pair.split("=", 1))
        if key not in BY_NAME and "#" not in key:
            raise UserError(f"{where}: {unknown_setting(key)}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
