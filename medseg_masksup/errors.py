"""The one home of user-facing errors: what the user gave us cannot be used.

Every error here derives from :class:`UserError`; the commands print its message on one line
(``medseg-masksup <command>: error: …``) with no traceback. Messages name the file and the problem.
"""

from __future__ import annotations

from collections.abc import Iterator


class UserError(ValueError):
    """A problem with the user's input or settings; the message says which file and what is wrong."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used (missing, unreadable, foreign, or made for other settings)."""


class DatalistError(UserError):
    """A datalist that cannot be trained or evaluated on."""


class SettingsError(UserError):
    """Training settings that cannot work."""


class InputError(UserError):
    """An input file or folder that cannot be read as an image."""


class OutputError(UserError):
    """An output location that cannot be used (e.g. it would overwrite an input)."""


class NothingProcessedError(UserError):
    """The run started but not a single case could be processed (each case's reason is reported)."""


class ExportParityError(UserError):
    """An exported model whose outputs differ from PyTorch's beyond the stated tolerance."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is shown as a one-line error (no traceback) by the commands."""
    return (UserError,)


def error_chain(err: BaseException | None) -> Iterator[BaseException]:
    """``err`` and the errors it was raised from or while handling (``__cause__``, else ``__context__``), in order."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__
