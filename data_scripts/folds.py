"""Stable, seeded k-fold assignment.

Items are ordered by ``sha256(f"{seed}:{id}")`` and dealt round-robin into ``k``
folds.  The result depends only on the set of ids, ``k`` and the seed, never on
file-listing order, Python's ``random`` module or the platform; folds differ in
size by at most one.  When ``groups`` are given (e.g. a data source inside a mixed
training set), each group is dealt separately, continuing the round-robin, so every
fold gets a fair share of every group.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence


def _rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def assign_folds(
    ids: Sequence[str], k: int, seed: int = 0, groups: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Map each id to a fold in ``0..k-1`` (balanced, deterministic)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    by_group: dict[str, list[str]] = {}
    for i in ids:
        by_group.setdefault(groups.get(i, "") if groups else "", []).append(i)
    folds: dict[str, int] = {}
    n = 0
    for g in sorted(by_group):
        for i in sorted(by_group[g], key=lambda x: (_rank(seed, x), x)):
            folds[i] = n % k
            n += 1
    return folds
