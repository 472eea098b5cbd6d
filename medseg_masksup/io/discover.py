"""The cases in an input file or folder: one per image file, one per DICOM series."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .formats import kind_of, strip_suffix

IGNORED_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}


@dataclass
class CaseSource:
    """Where one case comes from and where its outputs go (``<output_dir>/<rel_dir>/<stem>_*``).

    ``kind`` is ``None`` for a file we do not read (it is reported as skipped).
    """

    path: Path
    kind: str | None
    rel_dir: Path
    stem: str
    files: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.path)


def _dicom_header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - unreadable files become single cases and report their error when read
        return None


def _group_dicom(directory: Path, files: list[Path]) -> tuple[list[list[Path]], list[Path]]:
    """Split a folder's DICOM files into series of single-frame slices (≥ 2, sorted) and lone files."""
    import SimpleITK as sitk

    by_series: dict[str, list[Path]] = defaultdict(list)
    lone: list[Path] = []
    for path in files:
        ds = _dicom_header(path)
        uid = getattr(ds, "SeriesInstanceUID", None) if ds is not None else None
        frames = int(getattr(ds, "NumberOfFrames", 1) or 1) if ds is not None else 1
        if uid is None or frames > 1:
            lone.append(path)
        else:
            by_series[str(uid)].append(path)
    series: list[list[Path]] = []
    for uid, members in sorted(by_series.items()):
        if len(members) < 2:
            lone.extend(members)
            continue
        try:  # GDCM orders the slices along the slice normal
            ordered = [Path(p) for p in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(directory), uid)]
        except RuntimeError:
            ordered = []
        member_set = {p.resolve() for p in members}
        ordered = [p for p in ordered if p.resolve() in member_set]
        if len(ordered) < 2:
            lone.extend(members)
            continue
        series.append(ordered)
        lone.extend(p for p in members if p.resolve() not in {o.resolve() for o in ordered})
    return series, sorted(lone)


def _unique(stem: str, rel_dir: Path, taken: set[tuple[str, str]], tag: str) -> str:
    key = (str(rel_dir), stem.lower())
    if key not in taken:
        taken.add(key)
        return stem
    n, candidate = 1, f"{stem}_{tag}"
    while (str(rel_dir), candidate.lower()) in taken:
        n += 1
        candidate = f"{stem}_{tag}{n}"
    taken.add((str(rel_dir), candidate.lower()))
    return candidate


def _tag(path: Path) -> str:
    return "".join(c for c in path.name[len(strip_suffix(path)) :] if c.isalnum()) or "file"


def discover_cases(input_path: str | os.PathLike, exclude: tuple[Path, ...] = ()) -> list[CaseSource]:
    """Cases under ``input_path`` (a file, or a folder searched recursively, hidden entries ignored).

    A folder's DICOM slices sharing a SeriesInstanceUID form one case named after the folder; other
    files are one case each. Folders in ``exclude`` (e.g. an output folder inside the input) are skipped.
    """
    root = Path(input_path)
    if not root.exists():
        raise InputError(f"input not found: {root}")
    if root.is_file():
        return [CaseSource(root, kind_of(root), Path("."), strip_suffix(root), [root])]
    excluded = {p.resolve() for p in exclude}
    cases: list[CaseSource] = []
    taken: set[tuple[str, str]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        directory = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (directory / d).resolve() not in excluded)
        rel = directory.relative_to(root)
        files = [directory / f for f in sorted(filenames) if not f.startswith(".") and f not in IGNORED_NAMES]
        kinds = {f: kind_of(f) for f in files}
        dicom = [f for f in files if kinds[f] == "dicom"]
        series, lone = _group_dicom(directory, dicom) if len(dicom) > 1 else ([], dicom)
        for i, slices in enumerate(series):
            name = directory.resolve().name if len(series) == 1 else f"{directory.resolve().name}_series{i + 1}"
            parent = rel.parent if rel != Path(".") else Path(".")
            cases.append(CaseSource(directory, "dicom", parent, _unique(name, parent, taken, "series"), slices))
        for f in files:
            if kinds[f] == "dicom" and f not in lone:
                continue
            cases.append(CaseSource(f, kinds[f], rel, _unique(strip_suffix(f), rel, taken, _tag(f)), [f]))
    return cases
