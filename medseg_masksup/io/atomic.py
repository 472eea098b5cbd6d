"""Atomic writes: write to a temporary file beside the target, then ``os.replace`` it into place.

A reader never sees a half-written output, and an interrupted run leaves no truncated file
under the final name. A run may watch its writes (:func:`watched_writes`): to refuse a target, or to record
each file just before it is placed (``infer``'s manifest of the files it wrote).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from .formats import full_suffix


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WriteWatcher(Protocol):
    """Sees every :func:`atomic_target` write of the code it watches (see :func:`watched_writes`)."""

    def before_write(self, path: Path) -> None:
        """Called before anything is written for ``path``; raise to refuse it."""

    def before_replace(self, content: Path, path: Path) -> None:
        """Called with the finished temporary file before it becomes ``path``; raise to keep ``path`` as it was."""


_watcher: ContextVar[WriteWatcher | None] = ContextVar("atomic_write_watcher", default=None)


@contextmanager
def watched_writes(watcher: WriteWatcher) -> Iterator[None]:
    """Let ``watcher`` see (and refuse) every atomic write made in this context."""
    token = _watcher.set(watcher)
    try:
        yield
    finally:
        _watcher.reset(token)


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with the target's suffix (writers pick the format from it); on success
    move it onto ``path``, on failure remove it."""
    path = Path(path)
    watcher = _watcher.get()
    if watcher is not None:
        watcher.before_write(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + full_suffix(path), dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get ordinary permissions
        if watcher is not None:
            watcher.before_replace(tmp_path, path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_target(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (numpy scalars and paths become plain values)."""
    return write_text(path, json.dumps(data, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Rows as CSV with the given columns (floats to 6 significant digits), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row.get(k, "")) for k in columns})
    return write_text(path, buffer.getvalue())
