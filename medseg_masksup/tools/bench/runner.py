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
import itertools
import json
import math
import os
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ...bundle_files import bundle_file
from ...devices import choose_device
from ...method.trainer import amp_settings


#: training variants: bundle overrides that select each
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"method": "baseline", "concat_branches": False},
    "masksup-sequential": {"method": "masksup", "concat_branches": False},
    "masksup-concat": {"method": "masksup", "concat_branches": True},
}
BASELINE = "baseline"
MASKSUP = "masksup-sequential"

#: the issue's targets
MAX_STEP_RATIO = 2.0
MAX_MASK_SHARE = 0.05
MIN_LOADER_FACTOR = 3.0
INFERENCE_RATIO_TOLERANCE = 0.03


# --------------------------------------------------------------------------------------------------
# settings


@dataclass
class BenchSettings:
    """What to measure. ``steps`` training iterations per variant per round, ``rounds`` timed rounds."""

    network: str = "unet"
    network_size: str = "small"
    img_size: tuple[int, ...] = (128, 128)
    batch: int = 8
    steps: int = 10
    rounds: int = 5
    warmup: int = 1
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    plain_tensors: bool = False
    keep_memory: bool = False
    variants: tuple[str, ...] = tuple(VARIANTS)
    infer_batch: int = 1
    infer_steps: int = 50
    loader_batches: int = 0  # 0: one epoch of the training loader per round
    config_file: str | Sequence[str] = ""  # "" = the installed bundle's train.json
    output_dir: str = "runs"
    datalist: str = ""
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    profile_dir: str = ""

    def __post_init__(self) -> None:
        self.img_size = tuple(int(s) for s in self.img_size)
        self.variants = tuple(self.variants)
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        for name in ("batch", "steps", "rounds", "infer_batch", "infer_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0 or self.loader_batches < 0 or self.threads < 0:
            raise ValueError("warmup, loader_batches and threads must be >= 0")


# --------------------------------------------------------------------------------------------------
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


def keep_freed_memory() -> bool:
    """glibc only: keep freed memory in the process instead of handing it back to the OS after each step.

    By default glibc serves large blocks with ``mmap`` and trims the heap top, so every training step
    page-faults its activations in again and ``munmap``s them afterwards; the two-branch step (twice the
    live activations) pays this more than the baseline. ``mallopt`` turns that off for the whole process
    (like ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` in the environment, or jemalloc/tcmalloc).
    Returns whether it took effect; a no-op elsewhere.
    """
    import ctypes
    import ctypes.util

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_max = -1, -2, -4
    return all(
        mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1
        for param, value in ((m_mmap_max, 0), (m_trim_threshold, 2**31 - 1), (m_top_pad, 64 * 2**20))
    )


# --------------------------------------------------------------------------------------------------
# timers and memory


class Clock:
    """Seconds taken by ``fn()``: CUDA events around it (after a synchronisation) on GPU, perf_counter on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.name = "CUDA events" if self.cuda else "time.perf_counter"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def time(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def _proc_status_kb(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{key}:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


class PeakMemory:
    """Peak memory of a block: ``start()`` then ``stop() -> (peak_bytes, peak_above_start_bytes)``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.base = 0
        if device.type == "cuda":
            self.kind = "torch.cuda.max_memory_allocated"
        elif self._reset_rss_peak():
            self.kind = "peak RSS (VmHWM, reset per block)"
        else:
            self.kind = "peak RSS (getrusage ru_maxrss, process lifetime)"

    @staticmethod
    def _reset_rss_peak() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            return False
        return _proc_status_kb("VmHWM") is not None

    @staticmethod
    def _ru_maxrss_bytes() -> int:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak if sys.platform == "darwin" else peak * 1024)

    def start(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        elif self.kind.startswith("peak RSS (VmHWM"):
            self._reset_rss_peak()
            self.base = (_proc_status_kb("VmRSS") or 0) * 1024
        else:
            self.base = self._ru_maxrss_bytes()

    def stop(self) -> tuple[int, int]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.kind.startswith("peak RSS (VmHWM"):
            peak = (_proc_status_kb("VmHWM") or 0) * 1024
        else:
            peak = self._ru_maxrss_bytes()
        return int(peak), int(max(0, peak - self.base))


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


def _rotate(items: Sequence[str], k: int) -> list[str]:
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _summary(values: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    scaled = [v * scale for v in values]
    return {"median": _median(scaled), "min": min(scaled), "max": max(scaled), "rounds": scaled}


# --------------------------------------------------------------------------------------------------
# the benchmark


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
    clock, memory = Clock(device), PeakMemory(device)
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


# --------------------------------------------------------------------------------------------------
# profile: where a step's time goes


def _profile_sort_key(device: torch.device) -> str:
    if device.type != "cuda":
        return "self_cpu_time_total"
    from torch.autograd.profiler_util import FunctionEventAvg

    return "self_device_time_total" if hasattr(FunctionEventAvg, "self_device_time_total") else "self_cuda_time_total"


def profile_variants(settings: BenchSettings, device, variants: dict[str, _Variant], masker, x_batch, log) -> dict:
    """One extra (synchronised, so slightly slower) run per variant, timing the phases of each iteration
    through the trainer's events, plus a torch.profiler table of the top operators, written to
    ``settings.profile_dir``."""
    from ignite.engine import Events
    from monai.engines.utils import IterationEvents
    from torch.profiler import ProfilerActivity, profile

    out_dir = Path(settings.profile_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(device)
    phases_all: dict[str, Any] = {}
    for name, v in variants.items():
        trainer = v.trainer
        stamps: list[tuple[str, float]] = []

        def stamp(label: str, stamps: list = stamps):
            def record(*_args, **_kwargs) -> None:
                clock.sync()
                stamps.append((label, time.perf_counter()))

            return record

        handles = [trainer.add_event_handler(Events.ITERATION_STARTED, stamp("start")),
                   trainer.add_event_handler(IterationEvents.FORWARD_COMPLETED, stamp("forward")),
                   trainer.add_event_handler(IterationEvents.LOSS_COMPLETED, stamp("loss")),
                   trainer.add_event_handler(IterationEvents.BACKWARD_COMPLETED, stamp("backward")),
                   trainer.add_event_handler(Events.ITERATION_COMPLETED, stamp("end"))]
        hook = trainer.optimizer.register_step_post_hook(stamp("optimizer"))
        try:
            _run_trainer(v)
        finally:
            hook.remove()
            for handle in handles:
                handle.remove()
        order = ["start", "forward", "loss", "backward", "optimizer", "end"]
        names = {"forward": "masks + forward (both branches)", "loss": "loss", "backward": "backward",
                 "optimizer": "optimizer step", "end": "engine bookkeeping (decollate, metrics, events)"}
        totals = {label: 0.0 for label in order[1:]}
        it_stamps: dict[str, float] = {}
        for label, t in stamps:
            if label == "start":
                it_stamps = {"start": t}
                continue
            it_stamps[label] = t
            if label == "end" and all(k in it_stamps for k in order):
                for a, b in itertools.pairwise(order):
                    totals[b] += it_stamps[b] - it_stamps[a]
        total = sum(totals.values()) or float("nan")
        phases_all[name] = {names[k]: {"ms_per_step": 1e3 * s / settings.steps, "share": s / total}
                            for k, s in totals.items()}

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            _run_trainer(v)
            clock.sync()
        sort = _profile_sort_key(device)
        table = prof.key_averages().table(sort_by=sort, row_limit=30)
        (out_dir / f"profile_{name}.txt").write_text(table)
    if masker is not None:
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(settings.steps):
                masker.apply(x_batch)
            clock.sync()
        sort = _profile_sort_key(device)
        (out_dir / "profile_masks.txt").write_text(prof.key_averages().table(sort_by=sort, row_limit=30))
    log(f"  profiles written to {out_dir}")
    return {"phases": phases_all, "dir": str(out_dir)}


# --------------------------------------------------------------------------------------------------
# reporting


def _fmt_ms(summary: dict[str, Any]) -> str:
    return f"{summary['median']:.1f} ({summary['min']:.1f}–{summary['max']:.1f})"


def markdown_report(results: dict[str, Any]) -> str:
    """The results as markdown: a header line, the training table, the other measurements, the targets."""
    s, env = results["settings"], results["environment"]
    lines = [
        f"**{s['network']}/{s['network_size']}, {'×'.join(str(i) for i in s['img_size'])}, batch {s['batch']}** on "
        f"{env['device']} ({env['device_name']}, {env['torch_threads']} torch threads), AMP {env['amp']}, "
        f"channels_last {s['channels_last']}, compile {s['compile']}"
        f"{', freed memory kept (mallopt)' if env.get('freed_memory_kept') else ''} · timer {env['timer']} · "
        f"{s['rounds']} interleaved rounds × {s['steps']} steps after {s['warmup']} warm-up round(s) · "
        f"medians (min–max over rounds); torch {env['torch']}, MONAI {env['monai']}"
        + (f"; load average {env['load_average_start']:.2f} → {env['load_average_end']:.2f}"
           if env.get("load_average_start") is not None else ""),
        "",
        "| training variant | step (ms) | images/s | step ÷ baseline | peak memory (MB) | peak above start (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in results["train"].items():
        ratio = results["ratios"].get(f"{name}/{BASELINE}", {}).get("median", 1.0 if name == BASELINE else float("nan"))
        lines.append(f"| {name} | {_fmt_ms(t['step_ms'])} | {t['images_per_s']:.1f} | {ratio:.2f} | "
                     f"{t['peak_memory_mb']:.0f} | {t['peak_memory_above_start_mb']:.0f} |")
    lines += ["", f"peak memory: {env['memory']}", "", "| measurement | value |", "|---|---|"]
    mask = results.get("mask")
    if mask:
        lines.append(f"| mask generation ({mask['generator']}), per batch | {_fmt_ms(mask['ms_per_batch'])} ms = "
                     f"{100 * mask['share_of_step']:.1f} % of a {mask['reference_variant']} step |")
    data = results["data"]
    fastest = data["fastest_trainer_images_per_s"]
    lines.append(f"| data loader: bundle {data['loader']} over {data['dataset']} ({data['n_items']} items, cached in "
                 f"{data['cache_s']:.1f} s) | {data['bundle_loader']['images_per_s']:.0f} images/s = "
                 f"{data['factor_vs_fastest_trainer']:.1f}× the fastest trainer ({fastest:.1f} images/s) |")
    lines.append(f"| data loader: MONAI DataLoader, num_workers 0, same dataset | "
                 f"{data['plain_dataloader']['images_per_s']:.0f} images/s |")
    inf = results["inference"]
    for label, summary in inf["latency_ms"].items():
        lines.append(f"| inference latency, {label}, batch {inf['batch']} | {_fmt_ms(summary)} ms |")
    lines.append(f"| inference latency ratio ({inf['ratio']['of']}) | {inf['ratio']['median']:.3f} |")
    lines += ["", "| target | measured | met |", "|---|---:|:---:|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['value']:.3f} | {'yes' if t['met'] else '**no**'} |")
    profile = results.get("profile")
    if profile:
        lines += ["", (f"Where a step's time goes (one synchronised extra run per variant; operator tables in "
                       f"`{profile['dir']}`):"), ""]
        variants = list(profile["phases"])
        phases = list(next(iter(profile["phases"].values())))
        lines.append("| phase | " + " | ".join(f"{v} (ms)" for v in variants) + " |")
        lines.append("|---|" + "---:|" * len(variants))
        for phase in phases:
            cells = [f"{profile['phases'][v][phase]['ms_per_step']:.1f} ({100 * profile['phases'][v][phase]['share']:.0f} %)"
                     for v in variants]
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
