"""Checking the training settings before any work starts: one line per problem, saying what to change.

What each setting allows is declared in :mod:`.settings`; here the declared checks meet the checks that read
files (the datalist and its images) and the refusal of names that are no setting.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..data.datalist import load_split
from ..errors import DatalistError, SettingsError  # noqa: F401 - SettingsError: the error of this module's checks
from .settings import BY_NAME, literal_defaults, unknown_setting, value_problems


def _data_problems(datalist: Any, dataset_dir: Any, val_fold: Any) -> list[str]:
    problems = []
    if datalist and not Path(datalist).is_file():
        problems.append(f"--datalist {datalist} does not exist")
    elif not datalist and dataset_dir:
        if not Path(dataset_dir).is_dir():
            problems.append(f"--dataset_dir {dataset_dir} does not exist")
        elif not (Path(dataset_dir) / "datalist.json").is_file():
            problems.append(f"--dataset_dir {dataset_dir} holds no datalist.json; prepare it with `medseg-masksup prepare`")
        else:
            datalist = str(Path(dataset_dir) / "datalist.json")
    if datalist and Path(datalist).is_file() and BY_NAME["val_fold"].problem(val_fold) is None:
        try:
            load_split(datalist, val_fold)
        except DatalistError as err:
            problems.append(str(err))
    return problems


def _problems(values: Mapping[str, Any], unknown: list[str]) -> list[str]:
    data = _data_problems(values.get("datalist"), values.get("dataset_dir"), values.get("val_fold", 0))
    return unknown + value_problems(values) + data


def check_settings(**settings: Any) -> list[str]:
    """Every problem with the settings, as one-line messages (empty when all is well). Settings not given take
    their declared defaults; a name that is no setting is a problem too."""
    unknown = [unknown_setting(name) for name in settings if name not in BY_NAME]
    return _problems({**literal_defaults(), **settings}, unknown)


def config_problems(values: Mapping[str, Any], config_keys: Iterable[str], known_keys: Iterable[str],
                    hint: Mapping[str, str] | None = None) -> list[str]:
    """:func:`check_settings` for a bundle config: ``config_keys`` (its top-level keys) that are neither a setting
    nor in ``known_keys`` (the bundle's own ids, or MONAI's ``_name_`` keys) are refused, with the closest names
    (``hint``: a sentence to say instead for a name)."""
    known = set(known_keys)
    unknown = [unknown_setting(key, known, (hint or {}).get(key, "")) for key in config_keys
               if key not in BY_NAME and key not in known and not (key.startswith("_") and key.endswith("_"))]
    return _problems(values, unknown)


def exit_on(problems: list[str]) -> None:
    """Print each problem as ``error: …`` and exit with status 2 (no stack trace); nothing when there are none."""
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
