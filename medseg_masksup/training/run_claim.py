"""A run folder is claimed by the live process that trains into it, so a dead run can be told from a live one.

The process that makes (or resumes) a run folder holds an exclusive ``flock`` on ``<run folder>/.training.lock``
while it lives; the kernel drops the lock when the process ends, however it ends (SIGKILL, OOM killer, power
cut), while the file stays. So a lock file nobody holds marks a run whose training died, and a folder holding
nothing else is a run that died before writing anything (:func:`remove_if_empty`): the next start removes it
and closes its MLflow run (:func:`~medseg_masksup.training.run.close_dead_trainings`).
A training that ends by itself releases its claim and removes the lock file (and the folder, if it is still
empty). Where ``fcntl`` is missing (Windows) nothing is claimed and nothing is ever judged dead.
"""

from __future__ import annotations

import atexit
import os
import socket
from pathlib import Path

from ..errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".training.lock"
#: descriptors of the lock files this process holds, by run folder
_claims: dict[str, int] = {}


class RunFolderInUse(UserError):
    """The run folder is being trained into by another live process."""


def _key(run_dir: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(run_dir))


def _holder(lock: Path) -> str:
    try:
        pid, _, host = lock.read_text().strip().partition(" ")
    except OSError:
        return "another process"
    return f"process {pid} on {host}" if pid else "another process"


def claim(run_dir: str | os.PathLike) -> str:
    """Hold ``run_dir``'s lock until this process ends (or :func:`release`); returns ``run_dir``.
    Raises :class:`RunFolderInUse` (one line naming the holder) when a live process holds it."""
    key = _key(run_dir)
    if fcntl is None or key in _claims:
        return os.fspath(run_dir)
    lock = Path(key) / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunFolderInUse(f"{run_dir} is being trained into by {_holder(lock)}; wait for it to end "
                             "(or stop it), or start a new run") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    _claims[key] = fd
    if len(_claims) == 1:
        atexit.register(release_all)
    return os.fspath(run_dir)


def release(run_dir: str | os.PathLike) -> bool:
    """Give up this process's claim on ``run_dir``: remove the lock file, and the folder if nothing else is in it.
    Returns True when the (empty) folder was removed."""
    fd = _claims.pop(_key(run_dir), None)
    if fd is None:
        return False
    Path(_key(run_dir), LOCK_NAME).unlink(missing_ok=True)
    os.close(fd)
    try:
        os.rmdir(run_dir)  # only succeeds on an empty folder: the run wrote nothing
    except OSError:
        return False
    return True


def release_all() -> None:
    """Release every claim this process holds (registered with :mod:`atexit`)."""
    for key in list(_claims):
        release(key)


def in_use(run_dir: str | os.PathLike) -> bool:
    """Whether a live process (this one included) holds ``run_dir``'s claim."""
    key = _key(run_dir)
    if key in _claims:
        return True
    if fcntl is None:
        return True  # cannot tell: treat as alive
    try:
        fd = os.open(Path(key) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own shared lock
    return False


def abandoned(run_dir: str | os.PathLike) -> bool:
    """A run folder whose training died: its lock file names the process that claimed it (written only once the
    lock was held, so a claim still being made is never taken for a dead one) and no live process holds it."""
    try:
        claimed = (Path(run_dir) / LOCK_NAME).stat().st_size > 0
    except OSError:
        return False
    return fcntl is not None and claimed and not in_use(run_dir)


def remove_if_empty(run_dir: str | os.PathLike) -> bool:
    """Remove an abandoned run folder that holds nothing but its lock file; True if it was removed."""
    folder = Path(run_dir)
    try:
        if [p.name for p in folder.iterdir()] != [LOCK_NAME] or not abandoned(folder):
            return False
        (folder / LOCK_NAME).unlink()
        folder.rmdir()
    except OSError:  # a file appeared meanwhile, or the folder went: leave it
        return False
    return True


def remove_abandoned_empty_folders(parent: str | os.PathLike) -> list[Path]:
    """The abandoned, empty run folders directly under ``parent`` (runs that died before their first write), removed."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    return [folder for folder in sorted(parent.iterdir()) if folder.is_dir() and remove_if_empty(folder)]
