"""The measured objects, built from the training bundle: one trainer per variant, staged batches, loaders."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from ...bundle_files import bundle_file
from .settings import BenchSettings, VARIANTS


# device, AMP, memory format: the CUDA-path settings (all harmless on CPU)


class PrepareBatch:
    """``prepare_batch`` for the trainer: MONAI's default (``non_blocking`` copy to the device), then
    optionally plain tensors instead of MetaTensors and channels-last images."""

    def __init__(self, channels_last: bool = False, plain_tensors: bool = False) -> None:
        self.channels_last = channels_last
        self.plain_tensors = plain_tensors

    def __call__(self, batchdata, device=None, non_blocking: bool = False, **kwargs):
        from monai.engines.utils import default_prepare_batch

        image, label = default_prepare_batch(batchdata, device, non_blocking, **kwargs)[:2]
        if self.plain_tensors:
            image, label = _plain(image), _plain(label)
        if self.channels_last and image.ndim == 4:
            image = image.contiguous(memory_format=torch.channels_last)
        return image, label


def _plain(x):
    return x.as_tensor() if hasattr(x, "as_tensor") else x


def optimise_module(module: torch.nn.Module, channels_last: bool = False, compile: bool = False) -> torch.nn.Module:
    """Channels-last weights (4D convolutions) and ``torch.compile``, both optional."""
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if compile:
        module = torch.compile(module)
    return module


# --------------------------------------------------------------------------------------------------
# building the measured objects from the bundle


def _parser(settings: BenchSettings, device: torch.device, amp_kwargs: dict, variant: str):
    """The bundle's config, set to one variant, on ``device``, with no trainer handlers (no run folder,
    no MLflow run, no validation) and one epoch."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    files = settings.config_file or str(bundle_file("train.json"))
    parser.read_config(list(files) if not isinstance(files, (str, os.PathLike)) else files)
    values: dict[str, Any] = {
        "network": settings.network,
        "network_size": settings.network_size,
        "img_size": list(settings.img_size),
        "batch_size": settings.batch,
        "seed": settings.seed,
        "output_dir": settings.output_dir,
        "epochs": 1,
        **VARIANTS[variant],
        **settings.overrides,
    }
    if settings.datalist:
        values["datalist"] = settings.datalist
    for key, value in values.items():
        parser[key] = value
    parser["device"] = device
    parser["amp"] = bool(settings.amp)
    parser["train#trainer#amp_kwargs"] = dict(amp_kwargs)
    parser["train#handlers"] = []
    parser["train#run_handlers"] = []
    parser["train#trainer#train_data_loader"] = "$None"
    parser.parse()
    return parser


def _stage(loader: Iterable, n: int) -> list:
    """``n`` batches from the loader (epochs repeated if needed), kept as delivered (pinned on CUDA)."""
    batches: list = []
    while len(batches) < n:
        before = len(batches)
        for batch in loader:
            batches.append(batch)
            if len(batches) == n:
                break
        if len(batches) == before:
            raise ValueError("the training data loader yields no batches")
    return batches


def _batch_size(batch) -> int:
    image = batch["image"] if isinstance(batch, dict) else batch[0]
    return int(image.shape[0])


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    from ...training.distributed import unwrap

    return unwrap(module)


@dataclass
class _Variant:
    name: str
    trainer: Any
    step_s: list[float] = field(default_factory=list)
    peak: list[int] = field(default_factory=list)
    peak_delta: list[int] = field(default_factory=list)
    iterations: int = 0


def _build_variants(settings: BenchSettings, device, amp_kwargs, staged: list, log) -> dict[str, _Variant]:
    variants: dict[str, _Variant] = {}
    reference_state = None
    for name in settings.variants:
        parser = _parser(settings, device, amp_kwargs, name)
        trainer = parser.get_parsed_content("train#trainer")
        trainer.data_loader = staged
        trainer.prepare_batch = PrepareBatch(settings.channels_last, settings.plain_tensors or settings.compile)
        wrapper = _unwrap(trainer.network)
        if reference_state is None:
            reference_state = copy.deepcopy(wrapper.backbone.state_dict())
        else:
            wrapper.backbone.load_state_dict(reference_state)
        wrapper.backbone = optimise_module(wrapper.backbone, settings.channels_last, settings.compile)
        variants[name] = _Variant(name, trainer)
        log(f"  built {name}: {type(wrapper).__name__}(masker={'yes' if wrapper.masker is not None else 'no'}, "
            f"concat={wrapper.concat}), amp={trainer.amp} {trainer.amp_kwargs or ''}")
    return variants


def _run_trainer(variant: _Variant) -> None:
    variant.trainer.run()
    variant.iterations += int(variant.trainer.state.iteration)


def _loader_block(loader, n_batches: int) -> Callable[[], int]:
    """A callable that pulls ``n_batches`` batches (new epochs as needed) and returns the images delivered."""

    def pull() -> int:
        images, batches = 0, 0
        while batches < n_batches:
            for batch in loader:
                images += _batch_size(batch)
                batches += 1
                if batches == n_batches:
                    break
        return images

    return pull
