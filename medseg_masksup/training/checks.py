"""Checking the training settings before any work starts: one line per problem, saying what to change."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from .bundle import METHODS
from ..data.datalist import BIT_DEPTHS, load_split
from ..errors import DatalistError, SettingsError  # noqa: F401 - SettingsError: the error of this module's checks
from ..method.loss import CONSISTENCY_TARGETS, SEG_LOSSES
from ..method.masking import MASK_KINDS
from ..networks import NETWORKS, SIZES, required_divisor
from ..data.preprocessing import SPATIAL_MODES
from .augmentation import AUGMENTATIONS
from .schedule import LR_SCHEDULES


def _ratio_problem(ratio) -> str | None:
    values = [ratio] if isinstance(ratio, (int, float)) else list(ratio) if isinstance(ratio, Sequence) else None
    if not values or len(values) > 2 or not all(isinstance(v, (int, float)) for v in values):
        return f"--mask_ratio must be a number or [min, max] in [0, 1), got {ratio!r}"
    if not (0 <= values[0] <= values[-1] < 1):
        return f"--mask_ratio must lie in [0, 1) with min <= max, got {ratio!r}"
    return None


def check_settings(method: str, network: str, network_size: str, img_size, mask_kind: str, mask_ratio,
                   alpha: float, beta: float, gamma: float, seg_loss: str, epochs: int, batch_size: int, lr: float,
                   datalist: str = "", dataset_dir: str = "", val_fold: int = 0, spatial_mode: str = "resize",
                   scale: float = 1.0, augmentation: str = "light", lr_schedule: str = "constant",
                   warmup_epochs: int = 0, bit_depth: int | str = "auto", mask_warmup_epochs: int = 0,
                   ema_decay: float = 0.0, samples_per_epoch: int = 0, consistency: str = "symmetric",
                   masked_share: float = 1.0) -> list[str]:
    """Every problem with the settings, as one-line messages (empty when all is well)."""
    problems = []

    def choice(flag: str, value, options) -> None:
        if value not in options:
            problems.append(f"--{flag} {value!r} is not known; choose one of {', '.join(options)}")

    choice("method", method, METHODS)
    choice("network", network, NETWORKS)
    choice("network_size", network_size, SIZES)
    choice("mask_kind", mask_kind, MASK_KINDS)
    choice("seg_loss", seg_loss, SEG_LOSSES)
    choice("consistency", consistency, CONSISTENCY_TARGETS)
    if isinstance(masked_share, bool) or not isinstance(masked_share, (int, float)) or not 0 < masked_share <= 1:
        problems.append(f"--masked_share must be a number in (0, 1] (1: the whole batch is masked), got {masked_share!r}")
    choice("spatial_mode", spatial_mode, SPATIAL_MODES)
    choice("augmentation", augmentation, AUGMENTATIONS)
    choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    if bit_depth != "auto" and (isinstance(bit_depth, bool) or str(bit_depth) not in {str(b) for b in BIT_DEPTHS}):
        problems.append(f"--bit_depth must be auto or one of {', '.join(map(str, BIT_DEPTHS))}, got {bit_depth!r}")
    if not isinstance(scale, (int, float)) or not 0 < scale <= 4:
        problems.append(f"--scale must be a number in (0, 4] (1.0 = native pixels), got {scale!r}")
    if not isinstance(warmup_epochs, int) or warmup_epochs < 0 or (isinstance(epochs, int) and warmup_epochs >= max(epochs, 1)):
        problems.append(f"--warmup_epochs must be an integer >= 0 and below --epochs, got {warmup_epochs!r}")
    for flag, value, meaning in (("mask_warmup_epochs", mask_warmup_epochs, ""),
                                 ("samples_per_epoch", samples_per_epoch, " (0: one pass over the training set)")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(f"--{flag} must be an integer >= 0{meaning}, got {value!r}")
    if isinstance(ema_decay, bool) or not isinstance(ema_decay, (int, float)) or not 0 <= ema_decay < 1:
        problems.append(f"--ema_decay must be a number in [0, 1) (0: no EMA of the weights; typical 0.999), got {ema_decay!r}")
    problem = _ratio_problem(mask_ratio)
    if problem:
        problems.append(problem)
    for flag, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not isinstance(value, (int, float)) or value < 0:
            problems.append(f"--{flag} must be a number >= 0, got {value!r}")
    for flag, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            problems.append(f"--{flag} must be a positive integer, got {value!r}")
    if not isinstance(lr, (int, float)) or lr <= 0:
        problems.append(f"--lr must be a positive number, got {lr!r}")
    if (not isinstance(img_size, Sequence) or len(img_size) != 2
            or not all(isinstance(s, int) and s > 0 for s in img_size)):
        problems.append(f"--img_size must be two positive integers like [128,128], got {img_size!r}")
    elif network in NETWORKS and network_size in SIZES:
        divisor = required_divisor(network, network_size)
        if any(s % divisor for s in img_size):
            fixed = [max(divisor, round(s / divisor) * divisor) for s in img_size]
            problems.append(f"--img_size {list(img_size)} does not suit {network} ({network_size}): each side must be a "
                            f"multiple of {divisor}; try --img_size \"[{fixed[0]},{fixed[1]}]\"")
    if datalist and not Path(datalist).is_file():
        problems.append(f"--datalist {datalist} does not exist")
    elif not datalist and dataset_dir:
        if not Path(dataset_dir).is_dir():
            problems.append(f"--dataset_dir {dataset_dir} does not exist")
        elif not (Path(dataset_dir) / "datalist.json").is_file():
            problems.append(f"--dataset_dir {dataset_dir} holds no datalist.json; prepare it with `medseg-masksup prepare`")
        else:
            datalist = str(Path(dataset_dir) / "datalist.json")
    if datalist and Path(datalist).is_file():
        try:
            load_split(datalist, val_fold)
        except DatalistError as err:
            problems.append(str(err))
    return problems


def validate_or_exit(**settings) -> None:
    """:func:`check_settings`; on problems print them and exit with status 2 (no stack trace)."""
    problems = check_settings(**settings)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)


def refuse_under_distributed(samples_per_epoch: int) -> None:
    """Multi-process training shards one pass per epoch (``DistributedSampler``): ``samples_per_epoch``
    is single-process only; exit with status 2 and one line rather than silently ignoring it."""
    if samples_per_epoch:
        print("error: --samples_per_epoch works in single-process training only; under torchrun each epoch is one "
              "pass over the training set (drop --samples_per_epoch or raise --epochs)", file=sys.stderr)
        raise SystemExit(2)
