"""What a dataset module declares: its names, help text, mask rule and layout finder."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_scripts.pairs import Layout


@dataclass(frozen=True)
class DatasetSpec:
    """One supported dataset family.

    ``find_layout(src, options)`` inspects ``--src`` and returns a
    :class:`~data_scripts.pairs.Layout` (or raises
    :class:`~data_scripts.problems.PrepareError` when the folder does not look like
    this dataset).  ``options`` holds the dataset-specific command-line options
    added by ``add_arguments``.  ``group_of(id)`` optionally names the data source
    of a training item so that folds are stratified by it.
    """

    name: str
    title: str
    help: str
    layouts: str
    rule: str
    find_layout: Callable[[Path, dict[str, Any]], Layout]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    group_of: Callable[[str], str] | None = None
