"""Layout descriptions and image/mask pairing.

A dataset module describes its layout as a list of :class:`Source` objects: for one
split (and optionally a named subset of it), which folder holds the images, which
folder holds the masks, and two regular expressions that map a file's path (relative
to its folder, POSIX separators, matched case-insensitively) to a pair id.  Pairing
is then generic: every image must have exactly one mask with the same id and vice
versa; anything else is reported as a :class:`~data_scripts.problems.Problem`.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from data_scripts.problems import Problem

#: File extensions treated as images (lower case, with the dot).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Regex fragment matching any image extension (use at the end of a pattern).
IMAGE_EXT = r"\.(?:png|jpe?g|bmp|tiff?)"
#: Regex for "any file name stem" (no folder separator).
STEM = r"[^/]+?"

SPLITS = ("training", "validation", "test")


@dataclass(frozen=True)
class Source:
    """Where one split (or one named subset of it) keeps its images and masks.

    ``image_pattern``/``mask_pattern`` are regular expressions with a named group
    ``id``, matched against the whole path relative to ``image_dir``/``mask_dir``.
    ``mask_hint``/``image_hint`` format an expected relative path from an id (used
    only in messages).  ``depth`` is how many folder levels below the directories
    are searched.  ``ids``, when given, restricts the source to those ids (split files).
    Pair ids are ``subset/file-id`` unless ``qualify_id`` is false.
    """

    split: str
    image_dir: Path
    mask_dir: Path
    image_pattern: str
    mask_pattern: str
    mask_hint: str
    image_hint: str = "{id}.*"
    subset: str = ""
    depth: int = 0
    ids: frozenset[str] | None = None
    qualify_id: bool = True

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {self.split!r}")

    def pair_id(self, stem_id: str) -> str:
        """Datalist id of a pair: the file id, prefixed with the subset when there is one."""
        return f"{self.subset}/{stem_id}" if self.subset and self.qualify_id else stem_id


@dataclass(frozen=True)
class Pair:
    """One image and its mask, before reading them."""

    split: str
    subset: str
    id: str
    image: Path
    mask: Path


@dataclass
class Layout:
    """What a dataset module found under ``--src``: a variant name and its sources."""

    variant: str
    sources: list[Source]
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ScanResult:
    """Output of :func:`scan`: the pairs, the problems and the files no source claimed."""

    pairs: list[Pair]
    problems: list[Problem]
    ignored: list[Path]
    images_found: int


def list_files(folder: Path, depth: int) -> tuple[list[str], list[Problem]]:
    """Relative POSIX paths of all files under ``folder`` down to ``depth`` levels, sorted."""
    out: list[str] = []
    problems: list[Problem] = []

    def walk(d: Path, prefix: str, level: int) -> None:
        if level == 0 and not d.exists():
            return  # reported by the caller as "no images found"
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem.at(d, "unreadable", f"cannot read {d}: {exc.strerror or exc}"))
            return
        for e in entries:
            rel = prefix + e.name
            try:
                if e.is_dir():
                    if level < depth:
                        walk(Path(e.path), rel + "/", level + 1)
                elif e.is_file():
                    out.append(rel)
            except OSError:  # pragma: no cover - broken entry
                continue

    walk(folder, "", 0)
    return out, problems


def _match(pattern: re.Pattern[str], rel: str) -> str | None:
    m = pattern.fullmatch(rel)
    return m.group("id") if m else None


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def scan(sources: list[Source]) -> ScanResult:
    """List the sources' folders and pair images with masks by id.

    Problems reported: missing mask (with the expected path), missing image for a
    mask, several images or several masks for one id, unreadable folders and
    sources without any image.  Files matched by no source are returned in
    ``ignored`` (non-image files such as ``Thumbs.db`` or ``Grade.csv`` end up there).
    """
    listings: dict[tuple[Path, int], list[str]] = {}
    problems: list[Problem] = []
    claimed: set[Path] = set()
    pairs: list[Pair] = []
    images_found = 0

    def listing(folder: Path, depth: int) -> list[str]:
        key = (folder, depth)
        if key not in listings:
            files, probs = list_files(folder, depth)
            listings[key] = files
            problems.extend(probs)
        return listings[key]

    for src in sources:
        img_re = re.compile(src.image_pattern, re.IGNORECASE)
        mask_re = re.compile(src.mask_pattern, re.IGNORECASE)
        images: dict[str, list[str]] = defaultdict(list)
        masks: dict[str, list[str]] = defaultdict(list)
        for rel in listing(src.image_dir, src.depth):
            key = _match(img_re, rel)
            if key is not None and (src.ids is None or key in src.ids):
                images[key].append(rel)
                claimed.add(src.image_dir / rel)
        for rel in listing(src.mask_dir, src.depth):
            key = _match(mask_re, rel)
            if key is not None and (src.ids is None or key in src.ids):
                masks[key].append(rel)
                claimed.add(src.mask_dir / rel)
        n_images = sum(len(v) for v in images.values())
        images_found += n_images
        if n_images == 0:
            problems.append(Problem.at(src.image_dir, "empty", f"no images found under {src.image_dir}"))
        for key in sorted(set(images) | set(masks)):
            imgs, msks = images.get(key, []), masks.get(key, [])
            if not msks:
                for rel in imgs:
                    expected = src.mask_dir / src.mask_hint.format(id=key)
                    problems.append(
                        Problem.at(
                            src.image_dir / rel,
                            "missing_mask",
                            f"missing mask for image '{_name(rel)}' (expected {expected})",
                        )
                    )
            elif not imgs:
                if n_images == 0:
                    continue  # already reported as an empty source
                for rel in msks:
                    expected = src.image_dir / src.image_hint.format(id=key)
                    problems.append(
                        Problem.at(
                            src.mask_dir / rel,
                            "missing_image",
                            f"missing image for mask '{_name(rel)}' (expected {expected})",
                        )
                    )
            elif len(imgs) > 1:
                names = ", ".join(_name(r) for r in imgs)
                problems.append(
                    Problem.at(
                        src.image_dir / imgs[0],
                        "ambiguous",
                        f"several images share the id '{key}' in {src.image_dir}: {names}",
                    )
                )
            elif len(msks) > 1:
                names = ", ".join(_name(r) for r in msks)
                problems.append(
                    Problem.at(
                        src.image_dir / imgs[0],
                        "ambiguous",
                        f"several masks for image '{_name(imgs[0])}' in {src.mask_dir}: {names}",
                    )
                )
            else:
                pairs.append(
                    Pair(src.split, src.subset, src.pair_id(key), src.image_dir / imgs[0], src.mask_dir / msks[0])
                )

    ignored = sorted(
        {folder / rel for (folder, _), files in listings.items() for rel in files} - claimed
    )
    return ScanResult(pairs, problems, ignored, images_found)


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the :data:`IMAGE_EXTENSIONS`."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def find_dir(root: Path, predicate, max_depth: int = 1) -> Path | None:
    """First folder at or below ``root`` (breadth-first, sorted, up to ``max_depth``) satisfying ``predicate``."""
    level = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            if predicate(d):
                return d
            try:
                nxt.extend(sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")))
            except OSError:
                continue
        level = nxt
    return None


def child(parent: Path, *names: str) -> Path | None:
    """The first existing sub-folder of ``parent`` among ``names`` (case-insensitive), or None."""
    try:
        entries = {p.name.lower(): p for p in parent.iterdir() if p.is_dir()}
    except OSError:
        return None
    for n in names:
        if n.lower() in entries:
            return entries[n.lower()]
    return None
