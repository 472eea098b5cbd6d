"""Timing and memory measurement: clocks (CUDA events or ``perf_counter``), peak memory, round statistics."""

from __future__ import annotations

import re
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


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


TIMERS = ("wall", "cpu")


class Clock:
    """Seconds taken by ``fn()``: CUDA events around it (after a synchronisation) on GPU; on CPU
    ``perf_counter`` (``timer="wall"``) or this process's CPU time, user + system (``timer="cpu"``).

    CPU time is what a step costs on a core of its own: other processes sharing the machine lengthen the
    wall time but not it (memory-bandwidth and cache contention still show). With ``--threads 1`` it is the
    steadier measure on a loaded shared machine; with more threads it adds the threads' times up.
    """

    def __init__(self, device: torch.device, timer: str = "wall") -> None:
        if timer not in TIMERS:
            raise ValueError(f"unknown timer {timer!r}; choose one of {', '.join(TIMERS)}")
        self.device = device
        self.cuda = device.type == "cuda"
        self._now = time.process_time if timer == "cpu" and not self.cuda else time.perf_counter
        self.name = "CUDA events" if self.cuda else ("time.process_time (CPU time)" if timer == "cpu" else "time.perf_counter")

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
        t0 = self._now()
        fn()
        return self._now() - t0


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


def _rotate(items: Sequence[str], k: int) -> list[str]:
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _summary(values: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    scaled = [v * scale for v in values]
    return {"median": _median(scaled), "min": min(scaled), "max": max(scaled), "rounds": scaled}
