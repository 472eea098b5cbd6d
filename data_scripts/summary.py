"""The ``dataset.json`` summary: counts, image sizes, foreground fractions, problems."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from data_scripts.checks import Checked
from data_scripts.pairs import SPLITS
from data_scripts.problems import Problem

#: Bin edges of the foreground-fraction histogram (10 bins of width 0.1).
FG_EDGES = [round(i / 10, 1) for i in range(11)]
#: Bin edges (pixels) of the histogram of the longer image side.
SIDE_EDGES = [0, 256, 512, 1024, 2048, 4096]
MAX_LISTED = 50


def _fg_hist(values: list[float]) -> list[int]:
    counts = [0] * (len(FG_EDGES) - 1)
    for v in values:
        counts[min(int(v * 10), 9)] += 1
    return counts


def _side_hist(sizes: list[tuple[int, int]]) -> dict[str, int]:
    labels = [f"{a}-{b - 1}" for a, b in zip(SIDE_EDGES, SIDE_EDGES[1:])] + [f">={SIDE_EDGES[-1]}"]
    counts = dict.fromkeys(labels, 0)
    for w, h in sizes:
        side = max(w, h)
        idx = sum(side >= e for e in SIDE_EDGES[1:])
        counts[labels[idx]] += 1
    return counts


def build_summary(
    *,
    dataset: str,
    title: str,
    variant: str,
    src: Path,
    folds: int,
    seed: int,
    fold_of: dict[str, int],
    accepted: list[Checked],
    problems: list[Problem],
    ignored: list[Path],
    copy_images: bool,
    kept: list[str] | None = None,
) -> dict[str, Any]:
    """Summary dictionary written as ``dataset.json`` next to the datalist (deterministic).

    ``kept`` lists (relative to ``--out``) the outputs an earlier run wrote for pairs that are
    skipped this time because of a problem: they are left in place, not listed in the datalist,
    and remembered here so that a later run can remove them once the pair is gone for good.
    """
    by_split: dict[str, list[Checked]] = {s: [c for c in accepted if c.pair.split == s] for s in SPLITS}
    sizes = [c.size for c in accepted]
    subsets: dict[str, dict[str, int]] = {}
    for s in SPLITS:
        cnt = Counter(c.pair.subset for c in by_split[s] if c.pair.subset)
        if cnt:
            subsets[s] = dict(sorted(cnt.items()))
    exact = Counter(f"{w}x{h}" for w, h in sizes)
    empty = sorted(c.pair.id for c in accepted if c.foreground == 0.0)
    kinds = Counter(p.kind for p in problems)
    return {
        "name": dataset,
        "title": title,
        "layout": variant,
        "source": src.resolve().as_posix(),
        "mask_values": "0/255",
        "images": "copied" if copy_images else "left in place",
        "counts": {**{s: len(by_split[s]) for s in SPLITS}, "total": len(accepted)},
        "subsets": subsets,
        "folds": {
            "k": folds,
            "seed": seed,
            "counts": {str(f): sum(1 for v in fold_of.values() if v == f) for f in range(folds)},
        },
        "image_size": {
            "min_width": min((w for w, _ in sizes), default=0),
            "max_width": max((w for w, _ in sizes), default=0),
            "min_height": min((h for _, h in sizes), default=0),
            "max_height": max((h for _, h in sizes), default=0),
            "distinct": len(exact),
            "most_common": dict(sorted(exact.items(), key=lambda kv: (-kv[1], kv[0]))[:10]),
            "longer_side_histogram": _side_hist(sizes),
        },
        "foreground_fraction": {
            "bin_edges": FG_EDGES,
            "histogram": {s: _fg_hist([c.foreground for c in by_split[s]]) for s in SPLITS},
            "mean": {
                s: round(sum(c.foreground for c in by_split[s]) / len(by_split[s]), 4) if by_split[s] else None
                for s in SPLITS
            },
            "empty_masks": empty[:MAX_LISTED],
            "empty_count": len(empty),
        },
        "problems": {
            "count": len(problems),
            "by_kind": dict(sorted(kinds.items())),
            "items": [p.as_dict() for p in sorted(problems)],
        },
        "ignored_files": {
            "count": len(ignored),
            "items": [p.as_posix() for p in ignored[:MAX_LISTED]],
        },
        # outputs of an earlier run for pairs skipped this time (not in the datalist, not deleted)
        "kept_outputs": {"count": len(kept or []), "items": sorted(kept or [])},
    }
