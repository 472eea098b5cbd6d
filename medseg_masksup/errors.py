"""Errors caused by what the user gave us; commands print their message on one line, no traceback."""

from __future__ import annotations


class UserError(ValueError):
    """A problem with the user's input or settings; the message says which file and what is wrong."""


class InputError(UserError):
    """An input file or folder that cannot be read as an image."""


class OutputError(UserError):
    """An output location that cannot be used (e.g. it would overwrite an input)."""


class NothingProcessedError(UserError):
    """The run started but not a single case could be processed (each case's reason is reported)."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is shown as a one-line error (no traceback) by the commands."""
    from .data.datalist import DatalistError

    return (UserError, DatalistError)
