"""Where the MaskSup bundle's files are: inside the installed package, or in a source checkout.

A wheel installs ``bundles/masksup`` as ``medseg_masksup/bundles/masksup`` (package data, read
through :mod:`importlib.resources`); a source checkout (editable install) uses the repository's
``bundles/masksup`` directly, so both ``medseg-masksup train`` and
``python -m monai.bundle run --config_file bundles/masksup/train.json`` read the same files. The dataset
presets are ``presets/<name>.json`` there (:func:`preset_file`).
"""

from __future__ import annotations

import difflib
import importlib.resources
from pathlib import Path

from .errors import UserError

_CHECKOUT = Path(__file__).resolve().parents[1] / "bundles" / "masksup"


def bundle_dir() -> Path:
    """The folder holding ``train.json``, ``inference.json``, ``evaluate.json``, ``metadata.json`` …"""
    try:
        packaged = Path(str(importlib.resources.files("medseg_masksup.bundles") / "masksup"))
        if (packaged / "train.json").is_file():
            return packaged
    except ModuleNotFoundError:
        pass
    if (_CHECKOUT / "train.json").is_file():
        return _CHECKOUT
    raise UserError("the MaskSup bundle files are missing from this installation (reinstall medseg-masksup)")


def bundle_file(name: str) -> Path:
    """One file of the bundle, e.g. ``bundle_file("train.json")``; a missing one is a :class:`UserError`."""
    path = bundle_dir() / name
    if not path.is_file():
        raise UserError(f"bundle file not found: {path}")
    return path


def preset_names() -> list[str]:
    """The dataset presets the bundle holds (``glas``, ``kvasir``, ``ph2`` …), sorted."""
    return sorted(p.stem for p in (bundle_dir() / "presets").glob("*.json"))


def preset_file(name: str) -> Path:
    """The file of the preset ``name``; an unknown name is a :class:`UserError` naming the closest ones."""
    names = preset_names()
    if name not in names:
        near = difflib.get_close_matches(str(name), names, n=2, cutoff=0.6)
        guess = f"did you mean {' or '.join(near)}? " if near else ""
        raise UserError(f"unknown preset {name!r}; {guess}the presets are {', '.join(names)}")
    return bundle_dir() / "presets" / f"{name}.json"
