"""Ctrl-C during training: one line that says where training stopped and how to continue, no tracebacks."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Iterator

#: exit status of a program ended by SIGINT (128 + 2), as shells report it
INTERRUPTED_STATUS = 130


def resume_command(run_dir: str, argv: list[str] | None = None) -> str:
    """The command line that continues ``run_dir``: this bundle run's own arguments with ``--resume <run_dir>``."""
    args = list(sys.argv if argv is None else argv)[1:]
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume="):
            kept.append(arg)
    return shlex.join(["python", "-m", "monai.bundle", *kept, "--resume", str(run_dir)])


@contextlib.contextmanager
def quiet_interrupt() -> Iterator[None]:
    """While the body runs, Ctrl-C raises ``KeyboardInterrupt`` as usual but first silences logging, so the
    handlers that log the exception on its way out (ignite, MONAI's StatsHandler) print no tracebacks.
    Logging is switched back on when the body ends. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum, frame):
        logging.disable(logging.CRITICAL)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        logging.disable(logging.NOTSET)
