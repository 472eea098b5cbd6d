"""Where a training step's time goes: one synchronised, profiled run per variant."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import torch

from .measure import Clock
from .settings import BenchSettings
from .variants import _Variant, _run_trainer


# where a step's time goes


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
