"""Measurement library behind ``medseg-masksup bench``: what a MaskSup training step costs, and why.

Everything is measured in one process and *interleaved*: each round times every training variant,
the mask generator, the data loader and inference once, in a rotating order, so slow drifts of a
shared machine hit all of them alike; figures are medians over rounds, and ratios are medians of the
per-round (paired) ratios.

- **training**: the bundle's own ``MaskSupTrainer`` (built from ``train.json``, its handlers left out)
  runs ``steps`` iterations per round on batches drawn once from the bundle's data loader and kept in
  memory, for ``baseline`` (one pass), ``masksup-sequential`` (two passes) and ``masksup-concat`` (one
  pass on the concatenated batch). All variants start from the same weights.
- **masks**: the bundle's mask generator alone, on a batch of the training shape.
- **data loader**: the bundle's ``train#dataloader`` alone (cached dataset + augmentation + collation),
  in images delivered per second, against the fastest trainer's consumption; a plain MONAI
  ``DataLoader`` over the same dataset for comparison.
- **inference**: latency of a bare backbone versus the MaskSup-trained model (the wrapper in eval
  mode, as the validator and anyone holding the training module call it).
- **memory**: peak per variant: ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the process's peak
  resident set (``VmHWM``, reset before each block through ``/proc/self/clear_refs``; where that is not
  possible, ``getrusage``'s never-reset maximum).

Timers: CUDA events around each block after a synchronisation on GPU, ``time.perf_counter`` on CPU.
``warmup`` untimed rounds come first (autotuning, allocator, ``torch.compile``).
"""

from __future__ import annotations

import copy
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch

from ...devices import choose_device
from ...method.trainer import amp_settings
from .measure import Clock, PeakMemory, _median, _rotate, _summary, keep_freed_memory
from .profile import profile_variants
from .settings import BASELINE, BenchSettings, INFERENCE_RATIO_TOLERANCE, MASKSUP, MAX_MASK_SHARE, MAX_STEP_RATIO, MIN_LOADER_FACTOR
from .variants import PrepareBatch, _build_variants, _loader_block, _parser, _run_trainer, _stage, optimise_module


def run_benchmark(settings: BenchSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything; return the results as a JSON-ready dict (see :func:`markdown_report`).

    Process-wide settings it changes (torch threads, cuDNN autotuning) are restored on return."""
    threads, cudnn_benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        return _run(settings, log)
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def _run(settings: BenchSettings, log: Callable[[str], None]) -> dict[str, Any]:
    from monai.data import DataLoader

    device = choose_device(settings.device)
    clock, memory = Clock(device, settings.timer), PeakMemory(device)
    amp_kwargs, amp_label = amp_settings(device) if settings.amp else ({}, "off")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = bool(settings.cudnn_benchmark)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    kept_memory = keep_freed_memory() if settings.keep_memory else False
    if settings.keep_memory and not kept_memory:
        log("  --keep_memory: not a glibc process; allocator left as it is")
    torch.manual_seed(settings.seed)
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    log(f"bench: {settings.network}/{settings.network_size} {list(settings.img_size)} batch {settings.batch} on {device}"
        f" (amp {amp_label}, channels_last {settings.channels_last}, compile {settings.compile})")
    data_parser = _parser(settings, device, amp_kwargs, MASKSUP)
    t0 = time.perf_counter()
    loader = data_parser.get_parsed_content("train#dataloader")
    cache_s = time.perf_counter() - t0
    masker = data_parser.get_parsed_content("masker")
    staged = _stage(loader, settings.steps)
    loader_batches = settings.loader_batches or len(loader)
    plain_loader = DataLoader(loader.dataset, batch_size=settings.batch, shuffle=True, num_workers=0)
    log(f"  dataset cached in {cache_s:.1f} s ({len(loader.dataset)} training items); "
        f"{len(staged)} batches staged for the trainers")

    variants = _build_variants(settings, device, amp_kwargs, staged, log)
    prepare = PrepareBatch(settings.channels_last, plain_tensors=True)
    x_batch = prepare(staged[0], device, False)[0]
    x_infer = x_batch[: settings.infer_batch]
    if x_infer.shape[0] < settings.infer_batch:
        reps = math.ceil(settings.infer_batch / x_infer.shape[0])
        x_infer = x_infer.repeat(reps, *([1] * (x_infer.ndim - 1)))[: settings.infer_batch]

    masksup_names = [n for n in variants if n != BASELINE]
    trained_name = MASKSUP if MASKSUP in variants else (masksup_names or [BASELINE])[0]
    trained = variants[trained_name].trainer.network
    bare = copy.deepcopy(data_parser.get_parsed_content("network_def")).to(device)
    bare = optimise_module(bare, settings.channels_last, settings.compile).eval()
    infer_models = {"bare backbone": bare, f"MaskSup-trained ({trained_name}, eval)": trained}

    def infer(model, calls: int) -> None:
        with torch.inference_mode(), torch.autocast(device.type, enabled=bool(settings.amp), **amp_kwargs):
            for _ in range(calls):
                model(x_infer)

    def time_inference(model) -> float:
        """Seconds per call; the model in eval mode, one untimed call first (caches, mode switch)."""
        was_training = model.training
        model.eval()
        infer(model, 1)
        seconds = clock.time(lambda: infer(model, settings.infer_steps))
        model.train(was_training)
        return seconds / settings.infer_steps

    def make_masks() -> None:
        for _ in range(settings.steps):
            masker.apply(x_batch)

    mask_s: list[float] = []
    loader_s: list[tuple[float, int]] = []
    plain_loader_s: list[tuple[float, int]] = []
    infer_s: dict[str, list[float]] = {k: [] for k in infer_models}
    names = list(variants)

    for r in range(settings.warmup + settings.rounds):
        timed = r >= settings.warmup
        for name in _rotate(names, r):
            v = variants[name]
            memory.start()
            seconds = clock.time(lambda v=v: _run_trainer(v))
            peak, delta = memory.stop()
            if timed:
                v.step_s.append(seconds / settings.steps)
                v.peak.append(peak)
                v.peak_delta.append(delta)
        if masker is not None:
            seconds = clock.time(make_masks)
            if timed:
                mask_s.append(seconds / settings.steps)
        for target, block_loader in ((loader_s, loader), (plain_loader_s, plain_loader)):
            box: dict[str, int] = {}
            pull = _loader_block(block_loader, loader_batches)
            seconds = clock.time(lambda pull=pull, box=box: box.setdefault("n", pull()))
            if timed:
                target.append((seconds, box["n"]))
        for label in _rotate(list(infer_models), r):
            seconds = time_inference(infer_models[label])
            if timed:
                infer_s[label].append(seconds)
        log(f"  round {r + 1}/{settings.warmup + settings.rounds}{'' if timed else ' (warm-up)'}: "
            + ", ".join(f"{n} {variants[n].step_s[-1] * 1e3:.1f} ms" for n in names if timed and variants[n].step_s))

    profile = profile_variants(settings, device, variants, masker, x_batch, log) if settings.profile_dir else None
    results = _assemble(settings, device, clock, memory, amp_label, cache_s, variants, mask_s, masker,
                        loader, loader_s, plain_loader_s, infer_s, load_start)
    results["environment"]["freed_memory_kept"] = kept_memory
    if profile is not None:
        results["profile"] = profile
    return results


def _assemble(settings, device, clock, memory, amp_label, cache_s, variants, mask_s, masker, loader, loader_s,
              plain_loader_s, infer_s, load_start) -> dict[str, Any]:
    import monai

    batch = settings.batch
    train: dict[str, Any] = {}
    for name, v in variants.items():
        step = _summary(v.step_s, 1e3)
        train[name] = {
            "step_ms": step,
            "images_per_s": batch / (step["median"] / 1e3),
            "iterations_run": v.iterations,
            "peak_memory_mb": max(v.peak) / 2**20,
            "peak_memory_above_start_mb": max(v.peak_delta) / 2**20,
        }
    ratios: dict[str, Any] = {}
    if BASELINE in variants:
        base = variants[BASELINE].step_s
        for name, v in variants.items():
            if name != BASELINE:
                paired = [a / b for a, b in zip(v.step_s, base)]
                ratios[f"{name}/{BASELINE}"] = {"median": _median(paired), "rounds": paired}
    fastest = max(t["images_per_s"] for t in train.values())
    mask: dict[str, Any] | None = None
    if masker is not None and mask_s:
        ms = _summary(mask_s, 1e3)
        others = [n for n in variants if n != BASELINE]
        ref = MASKSUP if MASKSUP in variants else (others or [BASELINE])[0]
        shares = [m / s for m, s in zip(mask_s, variants[ref].step_s)]
        mask = {"generator": repr(masker), "ms_per_batch": ms, "share_of_step": _median(shares),
                "share_rounds": shares, "reference_variant": ref}

    def loader_summary(samples):
        rates = [n / s for s, n in samples]
        return {"images_per_s": _median(rates), "rounds": rates, "images_per_round": samples[0][1]}

    data = {
        "loader": type(loader).__name__,
        "dataset": type(loader.dataset).__name__,
        "n_items": len(loader.dataset),
        "cache_s": cache_s,
        "bundle_loader": loader_summary(loader_s),
        "plain_dataloader": loader_summary(plain_loader_s),
        "fastest_trainer_images_per_s": fastest,
    }
    data["factor_vs_fastest_trainer"] = data["bundle_loader"]["images_per_s"] / fastest
    labels = list(infer_s)
    inference = {label: _summary(values, 1e3) for label, values in infer_s.items()}
    paired_infer = [a / b for a, b in zip(infer_s[labels[1]], infer_s[labels[0]])]
    inference_ratio = {"median": _median(paired_infer), "rounds": paired_infer,
                       "of": f"{labels[1]} / {labels[0]}"}

    targets = []
    for key, value in ratios.items():
        targets.append({"target": f"{key} step time <= {MAX_STEP_RATIO}", "value": value["median"],
                        "met": value["median"] <= MAX_STEP_RATIO})
    if mask is not None:
        targets.append({"target": f"mask generation <= {MAX_MASK_SHARE:.0%} of a {mask['reference_variant']} step",
                        "value": mask["share_of_step"], "met": mask["share_of_step"] <= MAX_MASK_SHARE})
    targets.append({"target": f"data loader >= {MIN_LOADER_FACTOR:g}x the fastest trainer's consumption",
                    "value": data["factor_vs_fastest_trainer"],
                    "met": data["factor_vs_fastest_trainer"] >= MIN_LOADER_FACTOR})
    targets.append({"target": f"inference latency MaskSup-trained / bare = 1.00 +- {INFERENCE_RATIO_TOLERANCE:.2f}",
                    "value": inference_ratio["median"],
                    "met": abs(inference_ratio["median"] - 1.0) <= INFERENCE_RATIO_TOLERANCE})

    env = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "python": platform.python_version(),
        "amp": amp_label,
        "timer": clock.name,
        "memory": memory.kind,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    settings_dict = asdict(settings)
    settings_dict["config_file"] = settings.config_file if isinstance(settings.config_file, str) else list(settings.config_file)
    return {"settings": settings_dict, "environment": env, "train": train, "ratios": ratios, "mask": mask,
            "data": data, "inference": {"latency_ms": inference, "ratio": inference_ratio,
                                        "batch": settings.infer_batch}, "targets": targets}
