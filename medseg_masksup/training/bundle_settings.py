"""The declared settings as the running bundle config holds them, checked, and the TrainingRecord made from them.

``train.json`` calls :func:`read` (its ``settings`` id), :func:`check_or_exit` (first in ``initialize``) and
:func:`training_record`, so no setting is listed in the JSON beyond its default.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any

from monai.bundle import ConfigParser
from monai.bundle.utils import DEFAULT_MLFLOW_SETTINGS

from ..bundle_files import bundle_dir, bundle_file
from ..data.datalist import bit_depth, fingerprint
from ..networks import count_parameters
from ..record import TrainingRecord
from .method_parts import method_weights
from .checks import config_problems, exit_on
from .settings import RECORDED, SETTINGS

#: the bundle files whose top-level ids are the bundle's own (besides the settings)
BUNDLE_FILES = ("train.json", "multi_gpu_train.json")


class BundleSettings(dict):
    """The declared settings' values (``bool`` ones as bools), plus the config's top-level keys (``config_keys``)."""

    def __init__(self, values: dict[str, Any], config_keys: tuple[str, ...]) -> None:
        super().__init__(values)
        self.config_keys = config_keys


def running_config() -> ConfigParser:
    """The :class:`~monai.bundle.ConfigParser` evaluating the caller: a bundle expression runs inside its
    ``get_parsed_content``, so it is found up the call stack (MONAI hands expressions no parser)."""
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, ConfigParser):
            return candidate
        frame = frame.f_back
    raise RuntimeError("running_config() is for bundle expressions; no ConfigParser is evaluating this call")


def read() -> BundleSettings:
    """The running config's settings (resolved) and top-level keys."""
    parser = running_config()
    values = {s.name: s.coerce(parser.get_parsed_content(s.name)) for s in SETTINGS if s.name in parser}
    return BundleSettings(values, tuple(parser.get()))


@lru_cache(maxsize=1)
def bundle_ids() -> frozenset[str]:
    """The top-level ids the shipped bundle files define (``+imports``, ``train#sampler`` count as theirs), and
    those MONAI's ``run --tracking mlflow`` adds."""
    ids = set(DEFAULT_MLFLOW_SETTINGS["configs"])
    for name in BUNDLE_FILES:
        for key in json.loads(bundle_file(name).read_text()):
            ids.add(key.lstrip("+").replace("::", "#").split("#")[0])
    return frozenset(ids)


def _preset_hint() -> str:
    folder = bundle_dir()
    return (f"a preset is a config file on this route: --config_file \"['{folder / 'train.json'}',"
            f"'{folder / 'presets' / 'glas.json'}']\" (or medseg-masksup train --preset glas)")


def check_or_exit(settings: BundleSettings) -> None:
    """Refuse, one line each and exit status 2, every key that is no setting nor an id of the bundle, and
    every setting with a value it does not allow. First in ``initialize``: before any data, folder or run."""
    exit_on(config_problems(settings, settings.config_keys, bundle_ids(), hint={"preset": _preset_hint()}))


def training_record(settings: BundleSettings, split: tuple[list, list], network: Any, dataset: str,
                    experiment: str) -> TrainingRecord:
    """The run's record: its recorded settings (the method's effective loss weights, ``auto`` bit depth
    resolved from the data) and what training found (data fingerprint and sizes, parameter count)."""
    items = split[0] + split[1]
    values = {name: settings[name] for name in RECORDED}
    values["alpha"], values["beta"], values["gamma"] = method_weights(
        settings["method"], settings["alpha"], settings["beta"], settings["gamma"])
    values["bit_depth"] = bit_depth(items) if settings["bit_depth"] == "auto" else int(settings["bit_depth"])
    return TrainingRecord(**values, dataset=dataset, dataset_fingerprint=fingerprint(items), n_train=len(split[0]),
                          n_val=len(split[1]), n_parameters=count_parameters(network), mlflow_experiment=experiment)
