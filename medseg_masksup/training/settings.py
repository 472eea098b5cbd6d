"""Every training setting, declared once: name, type, default, allowed values, one line of help, and whether
the :class:`~medseg_masksup.record.TrainingRecord` keeps it.

Derived from :data:`SETTINGS`: the per-setting checks (:func:`value_problems`; the checks that join several
settings or read files are in :mod:`.checks`), the refusal of unknown names (:func:`unknown_setting`), the
record's setting fields (:mod:`.bundle_settings`), the help of ``medseg-masksup train`` and the options table of
bundles/masksup/README.md (:mod:`.settings_doc`). ``default`` is the value in ``train.json`` (a test keeps the
two equal); a ``$`` expression there is shown as ``shown_default``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..data.datalist import BIT_DEPTHS
from ..data.preprocessing import SPATIAL_MODES
from ..method import METHODS
from ..method.loss import CONSISTENCY_TARGETS, SEG_LOSSES
from ..method.masking import MASK_KINDS
from ..networks import NETWORKS, SIZES, required_divisor
from .augmentation import AUGMENTATIONS
from .schedule import LR_SCHEDULES

#: the kinds a setting can have (shown in the help and the options table)
KINDS = ("int", "number", "bool", "text", "list", "dict", "any")
_TRUE, _FALSE = ("true", "yes", "on"), ("false", "no", "off")


def as_bool(value: Any) -> bool | None:
    """``True``/``False``, or the words the command line gives (``true``, ``false``, any case); else ``None``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    return None


def _mask_ratio_problem(ratio: Any, values: Mapping[str, Any]) -> str | None:
    values = [ratio] if isinstance(ratio, (int, float)) else list(ratio) if isinstance(ratio, Sequence) else None
    if not values or len(values) > 2 or not all(isinstance(v, (int, float)) for v in values):
        return f"--mask_ratio must be a number or [min, max] in [0, 1), got {ratio!r}"
    if not (0 <= values[0] <= values[-1] < 1):
        return f"--mask_ratio must lie in [0, 1) with min <= max, got {ratio!r}"
    return None


def _img_size_problem(size: Any, values: Mapping[str, Any]) -> str | None:
    if (not isinstance(size, Sequence) or isinstance(size, str) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        return f"--img_size must be two positive integers like [128,128], got {size!r}"
    network, network_size = values.get("network"), values.get("network_size")
    if network in NETWORKS and network_size in SIZES:
        divisor = required_divisor(network, network_size)
        if any(s % divisor for s in size):
            fixed = [max(divisor, round(s / divisor) * divisor) for s in size]
            return (f"--img_size {list(size)} does not suit {network} ({network_size}): each side must be a "
                    f"multiple of {divisor}; try --img_size \"[{fixed[0]},{fixed[1]}]\"")
    return None


def _below_epochs(name: str) -> Callable[[Any, Mapping[str, Any]], str | None]:
    """The rule of a count of epochs that must stay below ``epochs`` (``warmup_epochs``, ``clean_final_epochs``)."""

    def problem(count: Any, values: Mapping[str, Any]) -> str | None:
        epochs = values.get("epochs")
        if (isinstance(count, bool) or not isinstance(count, int) or count < 0
                or (isinstance(epochs, int) and count >= max(epochs, 1))):
            return f"--{name} must be an integer >= 0 and below --epochs, got {count!r}"
        return None

    return problem


_warmup_problem = _below_epochs("warmup_epochs")


def _bit_depth_problem(bit_depth: Any, values: Mapping[str, Any]) -> str | None:
    if bit_depth != "auto" and (isinstance(bit_depth, bool) or str(bit_depth) not in {str(b) for b in BIT_DEPTHS}):
        return f"--bit_depth must be auto or one of {', '.join(map(str, BIT_DEPTHS))}, got {bit_depth!r}"
    return None


@dataclass(frozen=True)
class Setting:
    """One training setting (a top-level key of ``train.json``, overridden with ``--name value``)."""

    name: str
    default: Any
    help: str
    kind: str = "text"
    #: the allowed values, when they are a list
    choices: tuple = ()
    #: the allowed range of an ``int``/``number``: ``low``/``high`` (``None``: open-ended) and ``bounds``,
    #: ``"[]"``, ``"(]"``, ``"[)"`` or ``"()"``
    low: float | None = None
    high: float | None = None
    bounds: str = "[]"
    #: said after the range in a refusal, e.g. ``" (0: off)"``
    note: str = ""
    #: a check of its own, given the value and all the settings (returns the refusal or ``None``), with what it
    #: allows in words
    rule: Callable[[Any, Mapping[str, Any]], str | None] | None = None
    allowed_text: str = ""
    #: kept in the TrainingRecord (so in every checkpoint and in the MLflow run's parameters)
    recorded: bool = False
    #: the default in words (markdown), where train.json computes it
    shown_default: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or len(self.bounds) != 2:
            raise ValueError(f"setting {self.name}: kind must be one of {', '.join(KINDS)}, bounds two brackets")

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    def computed(self) -> bool:
        """Whether train.json computes the default (a ``$`` expression or an ``@`` reference)."""
        return isinstance(self.default, str) and self.default[:1] in ("$", "@")

    def requirement(self) -> str:
        """What the value must be, in words (``a positive integer``, ``a number in (0, 1]`` …)."""
        noun = "integer" if self.kind == "int" else "number"
        if self.low is not None and self.high is not None:
            return f"a {noun} in {self.bounds[0]}{self.low:g}, {self.high:g}{self.bounds[1]}"
        if self.low is not None:
            if (self.kind == "int" and self.low == 1) or (self.low == 0 and self.bounds[0] == "("):
                return f"a positive {noun}"
            return f"{'an' if noun == 'integer' else 'a'} {noun} >= {self.low:g}"
        return f"{'an' if noun == 'integer' else 'a'} {noun}"

    def allowed(self) -> str:
        """The allowed values in words, for the help and the options table."""
        if self.choices:
            return ", ".join(map(str, self.choices))
        if self.allowed_text:
            return self.allowed_text
        if self.kind in ("int", "number"):
            return self.requirement()
        return {"bool": "true, false", "dict": "a JSON object", "list": "a JSON list"}.get(self.kind, "")

    def _in_range(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.bounds[0] == "(" else value >= self.low)
        below = self.high is None or (value < self.high if self.bounds[1] == ")" else value <= self.high)
        return above and below

    def problem(self, value: Any, values: Mapping[str, Any] | None = None) -> str | None:
        """The one-line refusal of ``value`` (``values``: all the settings, for a rule that joins several), or
        ``None`` when it is allowed."""
        if self.choices:
            return None if value in self.choices else (
                f"{self.flag} {value!r} is not known; choose one of {', '.join(map(str, self.choices))}")
        if self.rule is not None:
            return self.rule(value, values or {})
        if self.kind == "bool":
            return None if as_bool(value) is not None else f"{self.flag} must be true or false, got {value!r}"
        if self.kind == "dict":
            return None if isinstance(value, Mapping) else f"{self.flag} must be a JSON object like {{}}, got {value!r}"
        if self.kind in ("int", "number"):
            types = int if self.kind == "int" else (int, float)
            if isinstance(value, bool) or not isinstance(value, types) or not self._in_range(value):
                return f"{self.flag} must be {self.requirement()}{self.note}, got {value!r}"
        return None

    def coerce(self, value: Any) -> Any:
        """The value as the pipeline uses it: a ``bool`` setting given as ``true``/``false`` text becomes a bool."""
        if self.kind == "bool" and as_bool(value) is not None:
            return as_bool(value)
        return value


def _choice(name: str, default: str, choices: Sequence[str], help_: str, recorded: bool = True) -> Setting:
    return Setting(name, default, help_, kind="text", choices=tuple(choices), recorded=recorded)


SETTINGS: tuple[Setting, ...] = (
    # the method
    _choice("method", "masksup", METHODS,
            "`masksup` (α, β, γ), `context` (γ = 0), `baseline` (β = γ = 0; no masked forward at all)"),
    Setting("alpha", 1.0, "α: weight of the segmentation loss on the image (paper: 1)",
            kind="number", low=0, recorded=True),
    Setting("beta", 1.0, "β: weight of the segmentation loss on the masked image (paper: 1; `baseline` zeroes it)",
            kind="number", low=0, recorded=True),
    Setting("gamma", 1.0, "γ: weight of the consistency between the two predictions (paper: 1; `masksup` only)",
            kind="number", low=0, recorded=True),
    _choice("consistency", "symmetric", CONSISTENCY_TARGETS,
            "`symmetric` (paper: the MSE pulls both branches together) or `to_clean` (stop-gradient on the clean "
            "prediction: only the masked branch is pulled toward it)"),
    Setting("masked_share", 1.0, "share of each batch that also goes through the masked branch (paper: 1.0); below 1 "
            "the masked pass costs that share of a clean one", kind="number", low=0, high=1, bounds="(]",
            note=" (1: the whole batch is masked)", recorded=True),
    _choice("seg_loss", "bce", SEG_LOSSES, "`bce` (paper, on logits) or `dicece` (MONAI DiceCELoss)"),
    _choice("mask_kind", "freeform", MASK_KINDS,
            "`freeform` (paper's irregular strokes), `patch` (MAE style), `block` (cutout style)"),
    Setting("mask_ratio", [0.4, 0.6], "share of the image hidden, sampled per image (paper: about half)",
            kind="list", rule=_mask_ratio_problem, allowed_text="a number or [min, max] in [0, 1)", recorded=True),
    Setting("mask_warmup_epochs", 0, "MaskSup only: the hidden share grows linearly from 0 (epoch 1) to `mask_ratio` "
            "(epoch `mask_warmup_epochs + 1`); follows the epoch, so resume stays on schedule. Not yet measured on real data",
            kind="int", low=0, recorded=True),
    Setting("clean_final_epochs", 0, "MaskSup only: the last N epochs train the clean branch alone (the plain "
            "supervised step, at its cost), so the clean objective has the last word",
            kind="int", rule=_below_epochs("clean_final_epochs"), allowed_text="an integer >= 0, below `epochs`",
            recorded=True),
    Setting("concat_branches", False, "one forward of `[x; x_m]` instead of two (faster on GPU; BatchNorm sees both "
            "halves)", kind="bool", recorded=True),
    # the network and how images meet it
    _choice("network", "unet", NETWORKS, "the backbone: `unet`, `swinunetr`, `unetpp` (BasicUNet++), `attentionunet`"),
    _choice("network_size", "small", SIZES, "`small` (CPU-friendly) or `base`"),
    Setting("img_size", [128, 128], "network input size: the size images are squashed to (`resize`) or the patch and "
            "sliding-window size (`patch`); a multiple of 8 for the small U-Net, 32 for SwinUNETR",
            kind="list", rule=_img_size_problem, allowed_text="two positive integers", recorded=True),
    _choice("spatial_mode", "resize", SPATIAL_MODES,
            "`resize`: every image squashed to `img_size`; `patch`: aspect kept, resized by `scale`, random `img_size` "
            "patches in training, an `img_size` sliding window (25 % overlap, Gaussian blending) in validation and "
            "inference. Validation always scores at the label's native resolution"),
    Setting("scale", 1.0, "`patch` mode: resize factor before patching (1.0 = native pixels; GlaS preset 0.5)",
            kind="number", low=0, high=4, bounds="(]", note=" (1.0 = native pixels)", recorded=True),
    _choice("augmentation", "light", AUGMENTATIONS,
            "`none` (paper), `light` (flips, 90° rotations), `strong` (nnU-Net-like: any-angle rotation, scaling, "
            "elastic; brightness, contrast, gamma, colour jitter, noise, blur)"),
    Setting("stain_jitter", False, "with `strong`: H&E stain jitter for histology (GlaS preset: on)",
            kind="bool", recorded=True),
    # the optimisation
    Setting("epochs", 30, "training epochs", kind="int", low=1, recorded=True),
    Setting("samples_per_epoch", 0, "training samples per epoch, drawn as back-to-back shuffles of the training set "
            "(nnU-Net's fixed-length epochs); `0` = one pass. Lets a tiny set (PH2: 16 training images) get as many "
            "steps per epoch as a larger one. Single-process only", kind="int", low=0, note=" (0: one pass over the training set)", recorded=True),
    Setting("batch_size", 4, "batch size", kind="int", low=1, recorded=True),
    Setting("lr", 1e-4, "Adam's learning rate (paper: 1e-4)", kind="number", low=0, bounds="(]", recorded=True),
    Setting("weight_decay", 1e-5, "Adam's weight decay (paper: 1e-5)", kind="number", low=0, recorded=True),
    _choice("lr_schedule", "constant", LR_SCHEDULES, "`constant`, `cosine` or `poly` (nnU-Net's), stepped per "
            "iteration after the linear warm-up; resumed from `last.pt`"),
    Setting("warmup_epochs", 0, "epochs of linear learning-rate warm-up before `lr_schedule`", kind="int",
            rule=_warmup_problem, allowed_text="an integer >= 0, below `epochs`", recorded=True),
    Setting("ema_decay", 0, "`0`: off; e.g. `0.999`: validate, save and infer with an exponential moving average of "
            "the weights (and BatchNorm statistics), updated after every step; `last.pt` also keeps the raw weights",
            kind="number", low=0, high=1, bounds="[)", note=" (0: no EMA of the weights; typical 0.999)", recorded=True),
    Setting("seed", 0, "seeds MONAI/torch/numpy and the mask generator", kind="int", low=0, recorded=True),
    # the data
    Setting("datalist", "", "a prepared `datalist.json` (see docs/datasets.md); empty: `dataset_dir`, else the "
            "embedded synthetic data"),
    Setting("dataset_dir", "", "a folder holding `datalist.json` (used when `datalist` is empty)"),
    Setting("val_fold", 0, "validation fold when the datalist has no `validation` list", kind="int", low=0,
            recorded=True),
    Setting("label_threshold", 0.0, "a label pixel is foreground when its first channel is above this; under `0` a "
            "grey-level mask (>5 % mid-grey pixels) is refused", kind="number", recorded=True),
    Setting("bit_depth", "auto", "values of images deeper than 8 bits span `0 … 2^bit_depth − 1` and are scaled onto "
            "0…255 (an 8-bit file is always read as 0…255); `auto`: the smallest of 10/12/14/16 bits holding the deep "
            "images' largest value; inference and evaluation scale alike", rule=_bit_depth_problem,
            allowed_text="auto, " + ", ".join(map(str, BIT_DEPTHS)), recorded=True),
    Setting("synthetic_cases", 200, "images of the embedded default data (used when no datalist is given)",
            kind="int", low=1),
    Setting("synthetic_size", 128, "pixel size of the embedded default data", kind="int", low=1),
    Setting("num_workers", 0, "data-loading processes", kind="int", low=0),
    Setting("cache_rate", 1.0, "share of the preprocessed images cached in memory; lowered (said in one line) when "
            "the cache would not fit in the memory available", kind="number", low=0, high=1),
    Setting("val_interval", 1, "validate every this many epochs", kind="int", low=1),
    # the run
    Setting("output_dir", "runs", "runs go to `<output_dir>/<dataset>/<method>/<timestamp>/`"),
    Setting("resume", "", "`auto` (or `true`): continue the newest unfinished run of this dataset and method from its "
            "`last.pt`; or a run folder. Same MLflow run, same folder", kind="any"),
    Setting("run_name", "$@method", "MLflow run name", shown_default="the method"),
    Setting("run_tags", {}, "extra MLflow run tags (the study runner sets study/arm/seed/fold)", kind="dict"),
    Setting("tracking_uri", "$medseg_masksup.tracking.store.sqlite_uri(os.path.join(@output_dir, 'mlflow.db'))",
            "MLflow store; a server URI (`http://…`) for a shared one", shown_default="`sqlite:///<output_dir>/mlflow.db`"),
    Setting("register_model", "", "also register the logged model in the MLflow Model Registry under this name"),
    Setting("device", "$medseg_masksup.devices.choose_device()", "`cpu`, `cuda`, `cuda:1` …",
            kind="any", shown_default="CUDA if available"),
    Setting("amp", "$torch.cuda.is_available()", "mixed precision", kind="bool", shown_default="on with CUDA"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
#: the settings the TrainingRecord keeps
RECORDED: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.recorded)


def literal_defaults() -> dict[str, Any]:
    """The defaults that are values (not computed by train.json)."""
    return {s.name: s.default for s in SETTINGS if not s.computed()}


def value_problems(values: Mapping[str, Any]) -> list[str]:
    """The one-line refusals of the declared settings in ``values``, in declared order."""
    return [p for s in SETTINGS if s.name in values for p in [s.problem(values[s.name], values)] if p]


def fitted_warmup(preset: str, config_values: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[int, str] | None:
    """A preset's warm-up clamped below the run's epochs, and the line that says so; ``None`` when it fits or
    ``warmup_epochs`` was given (then the settings check judges it). ``train --preset`` and ``compare --preset``
    both ask it."""
    warmup = config_values.get("warmup_epochs")
    epochs = overrides.get("epochs", config_values.get("epochs", BY_NAME["epochs"].default))
    if "warmup_epochs" in overrides or not all(isinstance(v, int) and not isinstance(v, bool) for v in (warmup, epochs)):
        return None
    if epochs < 1 or warmup < epochs:
        return None
    fitted = epochs - 1
    return fitted, (f"note: the {preset} preset's warm-up of {warmup} epochs is clamped to {fitted} "
                    f"to fit --epochs {epochs} (--warmup_epochs sets it)")


def closest(name: str, known: Iterable[str]) -> list[str]:
    """The known names nearest to ``name`` (at most three, best first)."""
    return difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)


def unknown_setting(name: str, others: Iterable[str] = (), hint: str = "") -> str:
    """``unknown setting --epoch; did you mean --epochs?``: the closest settings (else the closest of ``others``,
    the bundle's own ids); ``hint``, where given, is said instead."""
    near = closest(name, BY_NAME) or closest(name, others)
    if hint or not near:
        return f"unknown setting --{name}; {hint or 'see `medseg-masksup train --help` for the settings'}"
    return f"unknown setting --{name}; did you mean {' or '.join('--' + n for n in near)}?"
