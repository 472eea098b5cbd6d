"""How much memory caching the preprocessed items will take, known before any is cached.

The bundle's ``CacheDataset`` keeps every preprocessed item (float32 image and label) in memory.
:func:`cached_item_bytes` computes one item's size from the picture's header size and the training
record (the spatial rule of :mod:`.preprocessing`); :func:`fit_cache_rate` adds up the training and
validation items and, when they would not fit in the memory this run may use
(:data:`MEMORY_SHARE` of what the system reports available), lowers ``cache_rate`` so they do, with one
line on stderr. Items left uncached are read from disk each epoch (slower, same results).
Resident memory stays near these figures because the preprocessing returns its freed temporaries
to the system (:class:`.transforms.ReturnFreedMemory`); :func:`cache_threads` fills the cache on every core.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from ..record import TrainingRecord

#: share of the available memory that the cache may take (the rest: network, batches, augmentation)
MEMORY_SHARE = 0.8
#: per cached item beyond its arrays (MetaTensor metadata, dict), measured ≈ 2–4 kB
ITEM_OVERHEAD = 8 * 1024
FLOAT_BYTES = 4


def cached_spatial_size(record: TrainingRecord, width: int, height: int, training: bool) -> tuple[list[int], list[int]]:
    """Spatial sizes ``(image, label)`` of one preprocessed item, as MONAI lays it out (``(W, H)``)."""
    native = [int(width), int(height)]
    if record.spatial_mode == "patch":
        image = [max(1, math.floor(s * float(record.scale))) for s in native]
        if training:  # padded so random patches fit (SpatialPadd)
            image = [max(s, int(p)) for s, p in zip(image, record.img_size)]
    else:
        image = [int(s) for s in record.img_size]
    return image, (image if training else native)  # validation scores the label at native resolution


def cached_item_bytes(record: TrainingRecord, width: int, height: int, training: bool = True) -> int:
    """Bytes one preprocessed item of a ``width`` × ``height`` picture takes in the cache."""
    image, label = cached_spatial_size(record, width, height, training)
    label_bytes = FLOAT_BYTES if training else 1  # validation keeps its native-size labels as uint8
    return FLOAT_BYTES * int(record.in_channels) * math.prod(image) + label_bytes * math.prod(label) + ITEM_OVERHEAD


def available_memory() -> int | None:
    """Bytes of memory available to this process: ``MemAvailable`` of ``/proc/meminfo``, or less under a
    cgroup (v2) memory limit; ``None`` where neither can be read."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def cache_threads(num_workers: int) -> int:
    """Threads that fill the cache: every core this process may use (at least ``num_workers``). The cached
    transforms are deterministic, so the thread count changes how fast the cache fills, never what it holds."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(num_workers), cores)


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.2g} MB"


def fit_cache_rate(training: list[dict], validation: list[dict], record: TrainingRecord, cache_rate: float,
                   available: int | None = None) -> float:
    """``cache_rate``, or a lower one (two decimals) under which the cached training and validation items
    fit in :data:`MEMORY_SHARE` of ``available`` (default: :func:`available_memory`); a lowered rate is
    announced in one line on stderr. Sizes come from the pictures' headers."""
    from .image_check import picture_size

    cache_rate = float(cache_rate)
    available = available_memory() if available is None else int(available)
    if available is None or cache_rate <= 0:
        return cache_rate
    need = 0
    for items, is_training in ((training, True), (validation, False)):
        for item in items:
            need += cached_item_bytes(record, *picture_size(item["image"]), training=is_training)
    budget = MEMORY_SHARE * available
    if need * cache_rate <= budget:
        return cache_rate
    fitted = math.floor(100 * budget / need) / 100
    n = len(training) + len(validation)
    kept = f"caching {fitted:.0%} of them (cache_rate {fitted:g}); the rest are read from disk each epoch" if fitted > 0 \
        else "caching none of them (cache_rate 0): every item is read from disk each epoch"
    print(f"warning: caching the {n} preprocessed training and validation items would take {_gb(need * cache_rate)} "
          f"({_gb(need / max(n, 1))} each), more than the {_gb(budget)} this run may use "
          f"({MEMORY_SHARE:.0%} of the {_gb(available)} available); {kept}", file=sys.stderr)
    return fitted

