"""The declared settings in words: the help of ``medseg-masksup train`` and the options table of
bundles/masksup/README.md.

``python -m medseg_masksup.training.settings_doc bundles/masksup/README.md`` rewrites the table between its
markers (``--check``: exit 1 when it is out of date, changing nothing).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from ..io.atomic import write_text
from .settings import SETTINGS, Setting

TABLE_START = ("<!-- settings table: generated from medseg_masksup/training/settings.py by "
               "`python -m medseg_masksup.training.settings_doc bundles/masksup/README.md`; do not edit by hand -->")
TABLE_END = "<!-- end of settings table -->"


def shown_default(setting: Setting) -> str:
    """The default as the table shows it (markdown)."""
    if setting.shown_default:
        return setting.shown_default
    return f"`{json.dumps(setting.default) if not isinstance(setting.default, str) else setting.default or chr(34) * 2}`"


def options_table() -> str:
    """The markdown table of every setting: key, default, allowed values, meaning, kept in the record."""
    rows = ["| key | default | allowed | meaning | recorded |", "|---|---|---|---|---|"]
    for s in SETTINGS:
        allowed = ", ".join(f"`{a}`" for a in s.choices) if s.choices else s.allowed()
        rows.append(f"| `{s.name}` | {shown_default(s)} | {allowed} | {s.help} | {'yes' if s.recorded else ''} |")
    return "\n".join(rows)


def cli_help(width: int = 100) -> str:
    """The settings part of ``medseg-masksup train --help``: each ``--name``, its default, what it allows and means."""
    lines = []
    for s in SETTINGS:
        facts = f"default {shown_default(s).replace('`', '')}" + (f"; {s.allowed()}" if s.allowed() else "")
        lines.append(f"  --{s.name}  ({facts})")
        lines += textwrap.wrap(s.help.replace("`", ""), width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def with_table(text: str) -> str:
    """``text`` (a README) with the table between the markers replaced by the current one."""
    start, end = text.find(TABLE_START), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the settings table's markers are missing (a line {TABLE_START!r} and a line {TABLE_END!r})")
    return text[:start] + TABLE_START + "\n" + options_table() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medseg_masksup.training.settings_doc", description=__doc__)
    parser.add_argument("readme", type=Path, help="the README holding the table (bundles/masksup/README.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is out of date; change nothing")
    args = parser.parse_args(argv)
    try:
        text = args.readme.read_text()
        new = with_table(text)
    except (OSError, ValueError) as err:
        print(f"error: {args.readme}: {err}", file=sys.stderr)
        return 2
    if new == text:
        return 0
    if args.check:
        print(f"{args.readme}: the settings table is out of date; run {parser.prog} {args.readme}", file=sys.stderr)
        return 1
    write_text(args.readme, new)
    print(f"{args.readme}: settings table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
