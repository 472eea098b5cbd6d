"""One process at a time in a folder: an OS file lock (:class:`filelock.FileLock`) plus a record of its holder.

The lock itself is released by the operating system when its process ends, however it ends. Beside it,
``<lock>.holder`` names the holder (pid, host, start time, what it is), so that a second process is refused in
one line saying who holds the folder. A record left by a process that died (pid no longer running on this host,
or the lock no longer held) is taken over with a one-line note. On release both files are removed.

Used by ``compare`` (``study.lock`` in a study folder) and ``infer`` (``.medseg-masksup.lock`` in its output folder).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import OutputError
from .atomic import write_json

#: how long a process refused the lock waits for the holder's record to appear (it is written just after locking)
RECORD_WAIT_S = 1.0


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: ``what`` (e.g. ``infer run``), process id, host and start time (local, to the second)."""

    what: str
    pid: int
    host: str
    started: str

    @classmethod
    def this_process(cls, what: str) -> Holder:
        return cls(what, os.getpid(), socket.gethostname(), datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"))

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"

    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def is_running(self) -> bool | None:
        """Whether the process still runs; ``None`` when it is on another host (cannot be told from here)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        return True


def holder_path(lock: Path) -> Path:
    return lock.with_name(lock.name + ".holder")


def read_holder(lock: Path) -> Holder | None:
    """The holder recorded beside ``lock``; ``None`` when there is no (readable) record."""
    try:
        return Holder(**json.loads(holder_path(lock).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _current_holder(lock: Path) -> str:
    """The description of the process holding ``lock`` (its record may still be being written)."""
    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        holder = read_holder(lock)
        if holder is not None and holder.is_running() is not False:
            return holder.describe()
        if time.monotonic() > deadline:
            return "holder unknown"
        time.sleep(0.05)


def print_note(message: str) -> None:
    """``note: <message>`` on stderr, one line."""
    print(f"note: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def hold_lock(lock: Path, what: str, busy: Callable[[str], str], note: Callable[[str], None] = print_note,
              place: str | None = None) -> Iterator[Holder]:
    """Hold ``lock`` while the body runs, as ``what`` (e.g. ``"infer run"``).

    Held by another process: :class:`OutputError` with ``busy(<holder: pid, host, start time>)``. A record left by
    a holder that died is taken over with ``note(...)`` (``place`` names the folder in it). A record naming a
    process still running on this host is honoured even if the OS lock was free (a file system without locks)."""
    from filelock import FileLock, Timeout

    lock = Path(lock)
    file_lock = FileLock(os.fspath(lock), timeout=0)
    try:
        file_lock.acquire()
    except Timeout:
        raise OutputError(busy(_current_holder(lock))) from None
    left = read_holder(lock)
    # a record of this very process, found with the lock free, is one it left behind before
    running = left.is_running() if left is not None and not left.is_this_process() else False
    if running:
        file_lock.release()
        raise OutputError(busy(left.describe()))
    try:
        if left is not None:
            state = "no longer running" if running is False else "no longer holding its lock"
            note(f"{place or lock.parent}: taking over the lock of {_article(left.what)} that is {state} ({left.describe()})")
        me = Holder.this_process(what)
        write_json(holder_path(lock), asdict(me))
        yield me
    finally:
        for path in (holder_path(lock), lock):  # removed while held, so nobody sees a record without its lock
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        file_lock.release()


def _article(what: str) -> str:
    return ("an " if what.strip("'")[:1] in "aeiou" else "a ") + what
