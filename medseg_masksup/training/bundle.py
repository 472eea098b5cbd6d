"""The factories ``train.json`` calls: each turns the settings into one part of the run, so the JSON declares
components and their references instead of computing them in ``$`` expressions.

- :func:`run_context`: what the run trains on and where it goes (datalist, data set and experiment names,
  the split, the run folder to resume);
- :func:`training_record`: the run's :class:`~medseg_masksup.record.TrainingRecord`;
- :func:`run_dir`: the run folder, claimed by this process;
- :func:`masksup_network`, :func:`amp_kwargs`: the network trained and its mixed precision;
- :func:`training_transform`, :func:`fitted_cache_rate`, :func:`epoch_sampler`: the training data;
- :func:`mlflow_handler`: the run's MLflow handler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from monai.transforms import Compose
from torch.utils.data import RandomSampler

from ..data.cache import fit_cache_rate
from ..data.datalist import load_split
from ..data.preprocessing import training_preprocessing
from ..data.synthetic import ensure_synthetic_dataset
from ..method.masking import MaskGenerator
from ..method.trainer import amp_settings
from ..method.wrapper import MaskSup
from ..record import TrainingRecord
from ..tracking.run_handler import MLflowRunHandler
from . import bundle_settings
from .augmentation import build_augmentation
from .checkpoints import find_resume_dir
from .distributed import broadcast_from_main
from .run_claim import claim


@dataclass(frozen=True)
class RunContext:
    """What a training run is about, resolved once from the settings (:func:`run_context`)."""

    #: the datalist trained on (the embedded synthetic set's when none was given)
    datalist_file: str
    #: the datalist's name, safe for paths (runs go to ``<output_dir>/<dataset_name>/<method>/``)
    dataset_name: str
    #: the MLflow experiment: ``masksup-<dataset_name>``
    experiment_name: str
    train_items: list[dict] = field(repr=False)
    val_items: list[dict] = field(repr=False)
    output_dir: str = "runs"
    method: str = "masksup"
    #: the run folder to continue (``--resume``), ``""`` for a new run
    resume_dir: str = ""

    @property
    def datalists(self) -> dict[str, list[dict]]:
        """The split as the MLflow run's datasets: ``{"training": …, "validation": …}``."""
        return {"training": self.train_items, "validation": self.val_items}


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


def run_context(settings: Mapping[str, Any]) -> RunContext:
    """The run's context from the settings: the datalist (making the synthetic set when none is given), its
    name, the MLflow experiment, the training/validation split (``val_fold``) and the run folder to resume."""
    datalist_file = resolve_datalist(settings["datalist"], settings["dataset_dir"], settings["output_dir"],
                                     settings["synthetic_cases"], settings["synthetic_size"])
    name = dataset_name(datalist_file)
    train_items, val_items = load_split(datalist_file, settings["val_fold"])
    return RunContext(datalist_file, name, f"masksup-{name}", train_items, val_items, str(settings["output_dir"]),
                      settings["method"], find_resume_dir(settings["resume"], settings["output_dir"], name,
                                                          settings["method"]))


def training_record(settings: bundle_settings.BundleSettings, context: RunContext,
                    network: torch.nn.Module) -> TrainingRecord:
    """The run's record (:func:`medseg_masksup.training.bundle_settings.training_record`) for ``context``'s data."""
    return bundle_settings.training_record(settings, (context.train_items, context.val_items), network,
                                           context.dataset_name, context.experiment_name)


def new_run_dir(output_dir: str, dataset: str, method: str) -> str:
    """A fresh ``<output_dir>/<dataset>/<method>/<timestamp>`` folder: runs never overwrite each other."""
    base = Path(output_dir) / dataset / method
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = base / stamp, 1
    while folder.exists():
        n += 1
        folder = base / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return claim(folder)  # held while this process lives: a folder left by a dead run can be told apart


def run_dir(context: RunContext) -> str:
    """The run folder: the resumed one, or a fresh one made once (by rank 0 under torchrun, shared with all),
    claimed by this process (:mod:`.run_claim`; a folder another live training holds is refused)."""
    return broadcast_from_main(lambda: claim(context.resume_dir) if context.resume_dir
                               else new_run_dir(context.output_dir, context.dataset_name, context.method))


def masksup_network(settings: Mapping[str, Any], network: torch.nn.Module, masker: MaskGenerator | None,
                    device: torch.device | str) -> MaskSup:
    """The network trained: :class:`~medseg_masksup.method.wrapper.MaskSup` around the backbone ``network``
    (``concat_branches``, ``masked_share``), on ``device``."""
    return MaskSup(network, masker, concat=settings["concat_branches"], masked_share=settings["masked_share"]).to(device)


def amp_kwargs(settings: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The autocast arguments of the trainer and evaluator on ``device`` (``{}`` with ``amp`` off)."""
    return amp_settings(torch.device(device))[0] if settings["amp"] else {}


def training_transform(settings: Mapping[str, Any], record: TrainingRecord) -> Compose:
    """The training dataset's transform: preprocessing then augmentation (``augmentation``, ``stain_jitter``),
    flattened into one ``Compose`` so the cache keeps everything before the first random transform."""
    augmentation = build_augmentation(record, stain_jitter=settings["stain_jitter"])
    return Compose([training_preprocessing(record), augmentation]).flatten()


def fitted_cache_rate(settings: Mapping[str, Any], context: RunContext, record: TrainingRecord) -> float:
    """``cache_rate``, lowered (said in one line) when the cached training and validation items of ``context``
    would not fit in memory (:func:`medseg_masksup.data.cache.fit_cache_rate`)."""
    return fit_cache_rate(context.train_items, context.val_items, record, settings["cache_rate"])


def epoch_sampler(dataset, samples_per_epoch: int) -> RandomSampler | None:
    """nnU-Net-style fixed-length epochs: ``samples_per_epoch`` training samples per epoch, drawn as
    back-to-back shuffles of the whole set (each image seen equally often); ``None`` (0) = one pass."""
    if not samples_per_epoch:
        return None
    return RandomSampler(dataset, replacement=False, num_samples=int(samples_per_epoch))


def mlflow_handler(context: RunContext, record: TrainingRecord, resume_state: Mapping[str, Any] | None,
                   **handler_args: Any) -> MLflowRunHandler:
    """The run's :class:`~medseg_masksup.tracking.run_handler.MLflowRunHandler`: ``context``'s experiment, its
    split logged as the run's datasets, the record's parameters, and the resumed run when ``resume_state``
    holds one; ``handler_args`` (``tracking_uri``, ``run_name``, ``tags`` …) go to the handler as they are."""
    return MLflowRunHandler(experiment_name=context.experiment_name, datalists=context.datalists,
                            dataset_name=context.dataset_name, datalist_source=context.datalist_file,
                            run_id=resume_state["mlflow_run_id"] if resume_state else None,
                            experiment_param=record.params(), **handler_args)
