"""Small functions the bundle JSON calls to turn its settings into objects (kept out of the JSON)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from torch.utils.data import RandomSampler

from ..method import METHODS
from ..method.masking import MaskGenerator
from ..data.synthetic import ensure_synthetic_dataset
from .run_claim import claim


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def method_weights(method: str, alpha: float, beta: float, gamma: float) -> tuple[float, float, float]:
    """Effective (α, β, γ): ``baseline`` zeroes β and γ, ``context`` zeroes γ, ``masksup`` keeps all."""
    check_method(method)
    if method == "baseline":
        return float(alpha), 0.0, 0.0
    if method == "context":
        return float(alpha), float(beta), 0.0
    return float(alpha), float(beta), float(gamma)


def make_masker(method: str, kind: str, ratio, seed: int) -> MaskGenerator | None:
    """The training masker, or ``None`` for the baseline (then no masked forward runs at all)."""
    return None if check_method(method) == "baseline" else MaskGenerator(kind, ratio, seed=seed)


def epoch_sampler(dataset, samples_per_epoch: int) -> RandomSampler | None:
    """nnU-Net-style fixed-length epochs: ``samples_per_epoch`` training samples per epoch, drawn as
    back-to-back shuffles of the whole set (each image seen equally often); ``None`` (0) = one pass."""
    if not samples_per_epoch:
        return None
    return RandomSampler(dataset, replacement=False, num_samples=int(samples_per_epoch))


def resolve_datalist(datalist: str, dataset_dir: str, output_dir: str, synthetic_cases: int = 200,
                     synthetic_size: int = 128) -> str:
    """``--datalist`` if given, else ``<dataset_dir>/datalist.json``, else the embedded synthetic set
    (``synthetic_cases`` images of ``synthetic_size`` pixels, made once under ``<output_dir>/synthetic``)."""
    if datalist:
        return str(datalist)
    if dataset_dir:
        path = Path(dataset_dir) / "datalist.json"
        if not path.is_file():
            raise FileNotFoundError(f"--dataset_dir {dataset_dir} holds no datalist.json (prepare it with `medseg-masksup prepare`)")
        return str(path)
    return str(ensure_synthetic_dataset(Path(output_dir) / "synthetic", n_cases=synthetic_cases, size=synthetic_size))


def dataset_name(datalist: str) -> str:
    """The datalist's ``name`` (or its folder name), safe for paths and MLflow experiment names."""
    try:
        name = json.loads(Path(datalist).read_text()).get("name") or ""
    except (OSError, json.JSONDecodeError):
        name = ""
    name = name or Path(datalist).resolve().parent.name
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)


def new_run_dir(output_dir: str, dataset: str, method: str) -> str:
    """A fresh ``<output_dir>/<dataset>/<method>/<timestamp>`` folder: runs never overwrite each other."""
    base = Path(output_dir) / dataset / method
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir, n = base / stamp, 1
    while run_dir.exists():
        n += 1
        run_dir = base / f"{stamp}-{n}"
    run_dir.mkdir(parents=True)
    return claim(run_dir)  # held while this process lives: a folder left by a dead run can be told apart


def run_dir(resume_dir: str, output_dir: str, dataset: str, method: str) -> str:
    """The run folder: the resumed one, or a fresh one made once (by rank 0 under torchrun, shared with all),
    claimed by this process (:mod:`.run_claim`; a folder another live training holds is refused)."""
    from .distributed import broadcast_from_main

    return broadcast_from_main(lambda: claim(resume_dir) if resume_dir else new_run_dir(output_dir, dataset, method))
