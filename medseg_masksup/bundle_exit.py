"""Bundle runs (``python -m monai.bundle run --config_file bundles/masksup/….json``) end on a user error the way
the ``medseg-masksup`` commands do: one line ``error: <message>`` on stderr and the documented exit status
(2: the run could not start; 1: nothing could be processed), instead of MONAI's chained traceback and status 1.

Each bundle calls :func:`install` first in its ``initialize`` list. MONAI wraps an error raised while a config
expression is evaluated in ``RuntimeError("Failed to evaluate …")``; the user error is found in the chain.
"""

from __future__ import annotations

import atexit
import os
import sys
from types import TracebackType

#: exit status of a run that started but could not process a single case
NOTHING_PROCESSED_STATUS = 1
#: exit status of a run that could not start (bad setting, input, checkpoint, datalist, output folder)
USER_ERROR_STATUS = 2


def user_error_in(err: BaseException | None) -> BaseException | None:
    """The first user error (one the commands print as a one-line message) in ``err``'s cause/context chain."""
    from .checkpoint import CheckpointError
    from .errors import error_chain, user_error_types

    kinds = (*user_error_types(), CheckpointError)
    return next((link for link in error_chain(err) if isinstance(link, kinds)), None)


def exit_status(err: BaseException) -> int:
    from .errors import NothingProcessedError

    return NOTHING_PROCESSED_STATUS if isinstance(err, NothingProcessedError) else USER_ERROR_STATUS


def _excepthook(previous):
    def hook(kind: type[BaseException], err: BaseException, tb: TracebackType | None) -> None:
        user_error = user_error_in(err)
        if user_error is None:
            previous(kind, err, tb)
            return
        print(f"error: {user_error}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()  # what a normal exit would run (MLflow, logging), then the documented status
        os._exit(exit_status(user_error))

    hook.medseg_masksup = True
    return hook


def install() -> None:
    """Make an uncaught user error end the program with one line and its exit status (idempotent)."""
    if not getattr(sys.excepthook, "medseg_masksup", False):
        sys.excepthook = _excepthook(sys.excepthook)
