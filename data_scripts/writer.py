"""Atomic, idempotent writing of masks, copied images and JSON files.

Every write compares the new content with what is already on disk and leaves an
identical file untouched (same bytes, same mtime); changed files are written to a
temporary file in the same folder and moved into place with :func:`os.replace`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from data_scripts.problems import PrepareError


def _atomic(path: Path, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise PrepareError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PrepareError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly these bytes; True if written."""
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    _atomic(path, lambda fh: fh.write(data))
    return True


def file_sha256(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None if it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def copy_file(src: Path, dst: Path, sha256: str) -> bool:
    """Copy ``src`` to ``dst`` unless ``dst`` already has content hash ``sha256``; True if copied."""
    if dst.is_file() and file_sha256(dst) == sha256:
        return False

    def write(fh) -> None:
        try:
            with open(src, "rb") as s:
                shutil.copyfileobj(s, fh, 1 << 20)
        except OSError as exc:
            raise PrepareError(f"cannot read {src}: {exc.strerror or exc}") from exc

    _atomic(dst, write)
    return True


def dumps(obj: Any) -> bytes:
    """Deterministic JSON encoding used for every JSON file written (2-space indent, final newline)."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(path: Path, obj: Any) -> bool:
    """Write ``obj`` as JSON unless the file already has identical content; True if written."""
    return write_bytes(path, dumps(obj))


def datalist_path(path: Path, base: Path) -> str:
    """Path as stored in the datalist: relative (POSIX) if below ``base``, else absolute."""
    path = path.resolve()
    try:
        return path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def previous_outputs(datalist: Path, roots: tuple[str, ...] = ("masks", "images")) -> set[Path]:
    """Files below ``roots`` (relative to the datalist folder) that an earlier ``datalist.json`` referenced."""
    try:
        old = json.loads(datalist.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(old, dict):
        return set()
    base = datalist.parent.resolve()
    found: set[Path] = set()
    for key in ("training", "validation", "test"):
        items = old.get(key)
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            for field in ("image", "label"):
                value = item.get(field)
                if not isinstance(value, str) or os.path.isabs(value):
                    continue
                p = (base / value).resolve()
                if any(p.is_relative_to(base / r) for r in roots):
                    found.add(p)
    return found


def previously_kept(summary: Path, roots: tuple[str, ...] = ("masks", "images")) -> set[Path]:
    """Outputs of skipped pairs that an earlier run kept (``kept_outputs`` in its ``dataset.json``)."""
    try:
        old = json.loads(summary.read_text(encoding="utf-8"))
        items = old["kept_outputs"]["items"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    if not isinstance(items, list):
        return set()
    base = summary.parent.resolve()
    found: set[Path] = set()
    for value in items:
        if isinstance(value, str) and not os.path.isabs(value):
            p = (base / value).resolve()
            if any(p.is_relative_to(base / r) for r in roots):
                found.add(p)
    return found


def remove_stale(stale: set[Path], out: Path) -> list[Path]:
    """Delete files an earlier run wrote and this run no longer references; prune empty folders."""
    removed: list[Path] = []
    for p in sorted(stale):
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise PrepareError(f"cannot remove stale file {p}: {exc.strerror or exc}") from exc
    for root in ("masks", "images"):
        top = out / root
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()
            except OSError:
                pass
    return removed
