"""Orchestration: layout -> pairs -> validation -> folds -> masks, datalist.json, dataset.json."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data_scripts.checks import Checked, _disable, check_pairs
from data_scripts.folds import assign_folds
from data_scripts.pairs import SPLITS, scan
from data_scripts.problems import PrepareError, Problem, ProblemsFound
from data_scripts.summary import build_summary
from data_scripts.writer import (
    copy_file,
    datalist_path,
    previous_outputs,
    previously_kept,
    remove_stale,
    write_bytes,
    write_json,
)

DATALIST = "datalist.json"
SUMMARY = "dataset.json"


def default_workers() -> int:
    """Threads used to decode images: the CPUs available to this process, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


@dataclass
class Options:
    """Everything :func:`prepare` needs besides the dataset name."""

    src: Path
    out: Path
    folds: int = 5
    seed: int = 0
    strict: bool = False
    copy_images: bool = False
    dry_run: bool = False
    workers: int = field(default_factory=default_workers)
    progress: bool | None = None  # None: progress bars only on a terminal
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """What :func:`prepare` did."""

    dataset: str
    variant: str
    counts: dict[str, int]
    problems: list[Problem]
    ignored: list[Path]
    datalist: Path
    summary: Path
    masks_written: int = 0
    masks_unchanged: int = 0
    images_copied: int = 0
    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # earlier outputs of pairs skipped this run, left in place
    json_written: list[Path] = field(default_factory=list)


def _check_paths(src: Path, out: Path) -> None:
    if not src.exists():
        raise PrepareError(f"source folder not found: {src}")
    if not src.is_dir():
        raise PrepareError(f"source is not a folder: {src}")
    if out.exists() and not out.is_dir():
        raise PrepareError(f"output path exists and is not a folder: {out}")
    if out.resolve() == src.resolve():
        raise PrepareError(f"--out must differ from --src (both are {src})")


def prepare(dataset: str, options: Options) -> Result:
    """Validate the dataset under ``options.src`` and write its datalist under ``options.out``.

    Raises :class:`PrepareError` for fatal problems (unknown layout, no images, too
    few pairs) and :class:`ProblemsFound` in strict mode when any problem was found;
    in both cases nothing is written.  Otherwise bad pairs are skipped and listed in
    the result and in ``dataset.json``.
    """
    from data_scripts.registry import DATASETS

    spec = DATASETS[dataset]
    src, out = Path(options.src), Path(options.out)
    if options.folds < 2:
        raise PrepareError(f"--folds must be at least 2 (got {options.folds})")
    _check_paths(src, out)

    layout = spec.find_layout(src, options.extra)
    scanned = scan(layout.sources)
    if scanned.images_found == 0:
        dirs = sorted({s.image_dir for s in layout.sources})
        where = dirs[0] if len(dirs) == 1 else src
        raise PrepareError(f"no images found under {where}")
    accepted, check_problems = check_pairs(
        scanned.pairs, spec.rule, workers=options.workers, progress=options.progress, desc=f"checking {dataset}"
    )
    problems = sorted(layout.problems + scanned.problems + check_problems)
    if options.strict and problems:
        raise ProblemsFound(problems, src)

    training = [c for c in accepted if c.pair.split == "training"]
    if not training:
        raise PrepareError(f"no usable training pairs under {src} ({len(problems)} problems found)", problems)
    if len(training) < options.folds:
        raise PrepareError(
            f"only {len(training)} training pairs under {src}, fewer than --folds {options.folds}", problems
        )
    groups = {c.pair.id: spec.group_of(c.pair.id) for c in training} if spec.group_of else None
    fold_of = assign_folds([c.pair.id for c in training], options.folds, options.seed, groups)

    datalist_file, summary_file = out / DATALIST, out / SUMMARY
    counts = {s: sum(1 for c in accepted if c.pair.split == s) for s in SPLITS}
    result = Result(dataset, layout.variant, counts, problems, scanned.ignored, datalist_file, summary_file)

    lists: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    jobs: list[tuple[Checked, Path, Path | None]] = []
    for c in sorted(accepted, key=lambda c: (SPLITS.index(c.pair.split), c.pair.id)):
        mask_path = out / "masks" / c.pair.split / f"{c.pair.id}.png"
        image_path = (
            out / "images" / c.pair.split / f"{c.pair.id}{c.pair.image.suffix}" if options.copy_images else None
        )
        item: dict[str, Any] = {
            "image": datalist_path(image_path or c.pair.image, out),
            "label": datalist_path(mask_path, out),
        }
        if c.pair.split == "training":
            item["fold"] = fold_of[c.pair.id]
        item["id"] = c.pair.id
        lists[c.pair.split].append(item)
        jobs.append((c, mask_path, image_path))

    datalist = {
        "name": spec.name,
        "description": (
            f"{spec.title} ({layout.variant}) prepared by medseg-masksup; binary masks as 8-bit PNG, "
            f"background 0, foreground 255; training folds: {options.folds}-fold, seed {options.seed}"
        ),
        "labels": {"0": "background", "1": "foreground"},
        "mask_values": "0/255",
        "numTraining": len(lists["training"]),
        "numValidation": len(lists["validation"]),
        "numTest": len(lists["test"]),
        "folds": options.folds,
        "seed": options.seed,
        **lists,
    }
    # A pair skipped because of a problem (unreadable, size mismatch, mask not binarizable) may have
    # outputs from an earlier run: bad input must not cost them, so they are kept (not deleted, not
    # listed in the datalist) until the pair is fixed (then rewritten) or gone from --src (then stale).
    before = previous_outputs(datalist_file) | previously_kept(summary_file)
    accepted_pairs = {c.pair for c in accepted}
    duplicates = {p.path for p in check_problems if p.kind == "duplicate"}
    protected: set[Path] = set()
    for pair in scanned.pairs:
        if pair not in accepted_pairs and str(pair.image) not in duplicates:
            protected.add((out / "masks" / pair.split / f"{pair.id}.png").resolve())
            protected.add((out / "images" / pair.split / f"{pair.id}{pair.image.suffix}").resolve())
    result.kept = sorted(p for p in before & protected if p.is_file())

    summary = build_summary(
        dataset=dataset,
        title=spec.title,
        variant=layout.variant,
        src=src,
        folds=options.folds,
        seed=options.seed,
        fold_of=fold_of,
        accepted=accepted,
        problems=problems,
        ignored=scanned.ignored,
        copy_images=options.copy_images,
        kept=[datalist_path(p, out) for p in result.kept],
    )
    if options.dry_run:
        return result

    wanted: set[Path] = set()
    for c, mask_path, image_path in tqdm(
        jobs, desc="writing", unit="pair", disable=_disable(options.progress)
    ):
        wanted.add(mask_path.resolve())
        if write_bytes(mask_path, c.mask_png):
            result.masks_written += 1
        else:
            result.masks_unchanged += 1
        if image_path is not None:
            wanted.add(image_path.resolve())
            if copy_file(c.pair.image, image_path, c.file_sha256):
                result.images_copied += 1
    result.removed = remove_stale(before - wanted - set(result.kept), out)
    for path, obj in ((datalist_file, datalist), (summary_file, summary)):
        if write_json(path, obj):
            result.json_written.append(path)
    return result
