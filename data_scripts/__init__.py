"""Dataset preparers: official download layouts -> validated MONAI datalists.

Each supported dataset family (GlaS, Kvasir-SEG, CVC-ClinicDB, the PraNet polyp
benchmark split, ISIC 2018 Task 1, PH2) is described by a small module that says
where images and masks live, how mask names are derived from image names, how
labels binarize and which folder is which split.  The shared machinery pairs
files (:mod:`data_scripts.pairs`), validates every pair
(:mod:`data_scripts.checks`), assigns seeded k-folds (:mod:`data_scripts.folds`)
and writes binary masks, ``datalist.json`` and ``dataset.json`` atomically and
idempotently (:mod:`data_scripts.writer`).

Command line: ``medseg-masksup prepare <dataset> --src DIR --out DIR`` or
``python -m data_scripts <dataset> --src DIR --out DIR``.
"""

from __future__ import annotations

from data_scripts.prepare import Options, Result, prepare
from data_scripts.problems import PrepareError, Problem
from data_scripts.registry import DATASETS

__all__ = ["DATASETS", "Options", "PrepareError", "Problem", "Result", "prepare"]
