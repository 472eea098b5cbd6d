"""A full disk during training: found in an error's chain, and told in one line naming the file.

Every file training writes is written atomically (temporary file, then rename), so what was written before
the disk filled up is intact; the message says what that is and how to continue.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..checkpoint import LAST
from ..errors import error_chain

#: errno values that mean "the disk (or the user's quota) is full"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: how the same condition reads where the errno is lost (SQLite via SQLAlchemy, torch's C++ writer)
_DISK_FULL_TEXT = ("database or disk is full", os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT))


def disk_full_error(err: BaseException) -> BaseException | None:
    """The error in ``err``'s cause/context chain that says the disk is full, else ``None``."""
    for link in error_chain(err):
        if isinstance(link, OSError) and link.errno in DISK_FULL_ERRNOS:
            return link
    for link in error_chain(err):
        if any(text in str(link) for text in _DISK_FULL_TEXT):
            return link
    return None


class PendingWrite:
    """A :class:`~medseg_masksup.io.atomic.WriteWatcher` that knows which atomic write is under way: the file a
    failed write was for, since a full disk's ``OSError`` names no file (use with ``watched_writes``)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def before_write(self, path: Path) -> None:
        self.path = path

    def before_replace(self, content: Path, path: Path) -> None:
        self.path = None


def written_file(err: BaseException, fallback: str | os.PathLike, store: str | os.PathLike | None = None,
                 pending: str | os.PathLike | None = None) -> str:
    """The file that could not be written: the atomic write under way (``pending``), else the one the error
    names, the MLflow ``store`` for a full SQLite database, else ``fallback`` (e.g. the run folder)."""
    if pending is not None:
        return os.fspath(pending)
    for link in error_chain(err):
        for attr in ("filename2", "filename"):  # shutil's copy names the source first, the target second
            filename = getattr(link, attr, None)
            if isinstance(filename, (str, os.PathLike)) and os.fspath(filename):
                return os.fspath(filename)
    if any("database or disk is full" in str(link) for link in error_chain(err)):
        return f"the MLflow store {store}" if store else "the MLflow store"
    return os.fspath(fallback)


def disk_full_message(err: BaseException, run_dir: str | os.PathLike, resume: str,
                      store: str | os.PathLike | None = None, pending: str | os.PathLike | None = None) -> str:
    """One line: which file could not be written, that earlier files are intact, and how to go on."""
    run_dir = Path(run_dir)
    last = run_dir / LAST
    if last.is_file():
        kept = f"{last} (the last complete checkpoint) is intact; free some space, then resume with: {resume}"
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        kept = f"the files already in {run_dir} are intact, but no epoch was checkpointed; free some space and start again"
    else:
        kept = "no epoch was checkpointed; free some space and start again"
    return f"disk full: no space left on the device to write {written_file(err, run_dir, store, pending)}; {kept}"
