"""Ctrl-C or SIGTERM during training: one line that says where training stopped and how to continue, no tracebacks."""

from __future__ import annotations

import contextlib
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator

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


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT (Ctrl-C) or SIGTERM (``kill``, ``timeout``, a batch scheduler);
    ``status`` is the exit status shells report for that signal (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def status(self) -> int:
        return 128 + self.signum


def exit_status(err: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: its signal's (:class:`Interrupted`), else Ctrl-C's."""
    return err.status if isinstance(err, Interrupted) else INTERRUPTED_STATUS


@contextlib.contextmanager
def interrupt_on_signals(quiet: bool = False, on_repeat: Callable[[int], None] | None = None) -> Iterator[None]:
    """While the body runs, SIGINT and SIGTERM raise :class:`Interrupted` (a ``KeyboardInterrupt``), so a
    program stopped by ``kill`` or a scheduler cleans up as after Ctrl-C instead of vanishing. With ``quiet``,
    logging is silenced first, so the handlers that log the exception on its way out (ignite, MONAI's
    StatsHandler) print no tracebacks; it is switched back on when the body ends. With ``on_repeat``, the
    signals that follow the first one (an impatient second Ctrl-C) only call ``on_repeat(signum)``, so the
    clean-up the body does under this context is not cut short. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum, frame):
        if on_repeat is not None:
            for handled in previous:
                signal.signal(handled, lambda repeated, _: on_repeat(repeated))
        if quiet:
            logging.disable(logging.CRITICAL)
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupted) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if quiet:
            logging.disable(logging.NOTSET)
