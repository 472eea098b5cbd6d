"""The record of the files a run wrote into its output folder: ``.medseg-masksup-manifest.jsonl``.

JSON lines: a header (``{"medseg-masksup manifest": 1, "command": …, "started": …}``, written atomically when the
run starts, replacing an earlier run's manifest), then one line per file, ``{"path", "size", "sha256"}``, path
relative to the folder. A line is appended (one ``write``) just before its file is renamed into place, so every
file the run placed is listed, even when the run is killed. A torn or foreign line is ignored: its file then
counts as not written by the run, the safe direction. A later run deletes a listed file only if it still has the
listed size and SHA-256, lies inside the folder and is not a link.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .atomic import write_text

MANIFEST_NAME = ".medseg-masksup-manifest.jsonl"
HEADER_KEY = "medseg-masksup manifest"


@dataclass(frozen=True)
class Entry:
    """One file a run wrote: its path relative to the output folder, size in bytes and SHA-256."""

    path: str
    size: int
    sha256: str


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ManifestError(ValueError):
    """A manifest file that is not one this program wrote."""


def read_manifest(folder: Path) -> list[Entry] | None:
    """The files listed in ``folder``'s manifest (``None``: no manifest). :class:`ManifestError` when the file
    is not a manifest; unreadable entry lines are skipped."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        lines = path.read_text(errors="replace").splitlines()
        header = json.loads(lines[0]) if lines else None
    except (OSError, ValueError) as err:
        raise ManifestError(f"{path}: cannot be read ({err})") from None
    if not isinstance(header, dict) or HEADER_KEY not in header:
        raise ManifestError(f"{path}: not a manifest written by medseg-masksup")
    entries: dict[str, Entry] = {}
    for line in lines[1:]:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            entry = Entry(**json.loads(line))
            entries[entry.path] = entry
    return list(entries.values())


def listed_path(folder: Path, entry: Entry) -> Path | None:
    """Where ``entry`` points, if that lies inside ``folder`` (no absolute path, no ``..``, no linked folder)."""
    parts = Path(entry.path).parts
    if not parts or Path(entry.path).is_absolute() or ".." in parts:
        return None
    path = folder / entry.path
    try:
        if path.parent.resolve() != (folder.resolve() / entry.path).parent:
            return None
    except OSError:
        return None
    return path


def still_written(folder: Path, entry: Entry) -> Path | None:
    """The file of ``entry`` if it is still what the run wrote (inside ``folder``, a plain file, same size and
    SHA-256); ``None`` if it is gone, changed, or the entry points elsewhere."""
    path = listed_path(folder, entry)
    try:
        if path is None or path.is_symlink() or not path.is_file():
            return None
        if path.stat().st_size != entry.size or sha256(path) != entry.sha256:
            return None
    except OSError:
        return None
    return path


class ManifestWriter:
    """The manifest of the run now writing into ``folder``: :meth:`start` writes the header, :meth:`add` appends
    a file (called with the finished temporary file, before it is renamed to its final name)."""

    def __init__(self, folder: Path, header: dict) -> None:
        self.folder, self.path = Path(folder), Path(folder) / MANIFEST_NAME
        write_text(self.path, json.dumps({HEADER_KEY: 1, **header}) + "\n")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def add(self, content: Path, final: Path) -> None:
        """List ``final`` with the size and SHA-256 of ``content``. On failure (a full disk) the manifest is cut
        back to its last whole line and the error raised, so ``final`` is not placed unlisted."""
        entry = Entry(Path(os.path.relpath(final, self.folder)).as_posix(), content.stat().st_size, sha256(content))
        line = (json.dumps(asdict(entry)) + "\n").encode()
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            if os.write(self._fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(self.path))  # a short write: the disk is full
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, end)
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
