"""One module per ``medseg-masksup`` command, each exposing ``main(argv) -> int``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def run_command(name: str, parser: argparse.ArgumentParser, argv: list[str],
                action: Callable[[argparse.Namespace], int | None],
                exit_codes: tuple[tuple[type[BaseException], int], ...] = ()) -> int:
    """Parse ``argv`` and run ``action(args)``; a user error prints ``medseg-masksup <name>: error: …`` (no
    stack trace) and returns 2, or the code ``exit_codes`` gives for its type."""
    from medseg_masksup.errors import user_error_types

    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return int(action(args) or 0)
    except user_error_types() as err:
        print(f"medseg-masksup {name}: error: {err}", file=sys.stderr)
        return next((code for kind, code in exit_codes if isinstance(err, kind)), 2)
