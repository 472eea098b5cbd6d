"""Helpers for multi-process (``torchrun``) training with the MONAI bundle.

``bundles/masksup/multi_gpu_train.json`` merges over ``train.json`` and calls these functions:
process-group set-up (NCCL on GPUs, gloo on CPU), one device per local rank, the MaskSup wrapper
inside ``DistributedDataParallel``, and the rule that only rank 0 writes anything (MLflow run,
checkpoint, report, progress bar).

Everything here also works in a plain single process (no ``torchrun``): rank 0 of a world of 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..devices import choose_device
from ..tracking.store import sqlite_path

T = TypeVar("T")


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised (and has more than one process)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Global rank: from the process group if initialised, else ``$RANK`` (torchrun sets it), else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """Rank on this node (``$LOCAL_RANK``, set by torchrun), 0 outside torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0: the one process that logs to MLflow, saves checkpoints and writes reports."""
    return rank() == 0


def default_backend() -> str:
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> torch.device:
    """Initialise the process group from torchrun's environment (once) and return this process's device.

    ``backend`` defaults to NCCL when CUDA is available, gloo otherwise (CPU runs, tests). Without
    torchrun's environment (no ``MASTER_ADDR``/``WORLD_SIZE``), nothing is initialised: single process.
    """
    device = choose_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if dist.is_available() and not dist.is_initialized() and "MASTER_ADDR" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group(backend=backend or default_backend(), timeout=timedelta(seconds=timeout_s))
    return device


def finalize() -> None:
    """Destroy the process group if this process created one (the bundle's ``finalize``)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def enter_main_first() -> None:
    """With :func:`exit_main_first`, brackets work that rank 0 must finish before the other ranks start it.

    Non-main ranks wait here; rank 0 passes, does the work, and releases them in ``exit_main_first``.
    Used around resolving the datalist (the synthetic set is written once, by rank 0).
    """
    if is_distributed() and not is_main_process():
        dist.barrier()


def exit_main_first() -> None:
    if is_distributed() and is_main_process():
        dist.barrier()


def main_process_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 first, then on the other ranks (which then find its files made)."""
    enter_main_first()
    try:
        return fn()
    finally:
        exit_main_first()


def broadcast_from_main(fn: Callable[[], T]) -> T:
    """``fn()`` evaluated on rank 0 only and its (picklable) result sent to every rank.

    For values with side effects that must happen once, e.g. creating the run folder: every rank
    then agrees on the same path. A collective: all ranks must call it at the same point.
    """
    if not is_distributed():
        return fn()
    box = [fn() if is_main_process() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_seed(seed: int | None) -> int | None:
    """A different seed per rank (``seed + rank``), so ranks draw different masks for different data."""
    return None if seed is None else int(seed) + rank()


def reseed_masker(masker, seed: int | None):
    """Restart ``masker``'s random sequence from :func:`rank_seed` (no-op for ``None``, the baseline)."""
    if masker is not None:
        masker.reset(rank_seed(seed))
    return masker


def touch_tracking_store(tracking_uri: str) -> None:
    """Open the MLflow store once, creating (and migrating) a fresh SQLite database.

    Called on rank 0 before the other ranks build their (never attached) MLflow handlers, so that
    no two processes race to create the same database tables.
    """
    import mlflow

    db = sqlite_path(tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.MlflowClient(tracking_uri=tracking_uri).search_experiments(max_results=1)


def ddp_wrap(
    module: nn.Module, device: torch.device | str | None = None, sync_batchnorm: bool = True, **ddp_kwargs: Any
) -> nn.Module:
    """``module`` moved to ``device`` and, when a process group is up, wrapped in ``DistributedDataParallel``.

    On CUDA BatchNorm layers become SyncBatchNorm (``sync_batchnorm``); on CPU (gloo) the module is
    wrapped as is. Outside a distributed run the module is returned unwrapped, so the same config
    also runs as one process.
    """
    device = torch.device(device) if device is not None else choose_device()
    module = module.to(device)
    if not is_distributed():
        return module
    if device.type == "cuda":
        if sync_batchnorm:
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ddp_kwargs.setdefault("device_ids", [device.index])
        ddp_kwargs.setdefault("output_device", device.index)
    return nn.parallel.DistributedDataParallel(module, **ddp_kwargs)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP (or ``torch.compile``) wrapper; the module itself otherwise."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


#: ``(module, class)`` of handlers that write files, log to MLflow or draw progress: rank 0's business only
MAIN_ONLY_HANDLERS = (
    ("monai.handlers", "CheckpointSaver"),
    ("monai.handlers", "MLFlowHandler"),
    ("monai.handlers", "StatsHandler"),
    ("monai.handlers", "TensorBoardHandler"),
    ("ignite.handlers", "ProgressBar"),
)


def _main_only_handler_types() -> tuple[type, ...]:
    import importlib

    types = []
    for module_name, class_name in MAIN_ONLY_HANDLERS:
        try:
            types.append(getattr(importlib.import_module(module_name), class_name))
        except (ImportError, AttributeError):
            continue
    return tuple(types)


def active_handlers(handlers: Iterable[Any] | None) -> list[Any]:
    """The handlers this rank should attach: ``None`` entries (disabled in the config) are dropped, and
    on ranks other than 0 so is anything that writes or logs (:data:`MAIN_ONLY_HANDLERS`: MLflow, stats, progress
    bar; and our handlers that say ``main_process_only``, the training report). ``TrainingCheckpoints`` stays on every rank: rank 0 writes, all ranks restore. Validation itself, and its metric all-gather, still run on
    every rank.
    """
    kept = [h for h in (handlers or []) if h is not None]
    if is_main_process():
        return kept
    main_only_types = _main_only_handler_types()
    return [h for h in kept if not isinstance(h, main_only_types) and not getattr(h, "main_process_only", False)]
