"""``medseg-masksup train [--preset NAME] [--config_file F] [--SETTING VALUE ...]``: run the training bundle.

The settings are those of :mod:`medseg_masksup.training.settings`; the bundle refuses a name that is no
setting before any work. ``--preset`` merges a dataset preset of the installed bundle over ``train.json``;
its warm-up is clamped to a shorter ``--epochs`` (said in one line), an explicit ``--warmup_epochs`` is not.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

USAGE = "usage: medseg-masksup train [--preset NAME] [--config_file F] [--SETTING VALUE ...]"


def _help() -> str:
    from medseg_masksup.bundle_files import bundle_dir, preset_names
    from medseg_masksup.training.settings_doc import cli_help

    folder = bundle_dir()
    return "\n".join([
        USAGE, "",
        "Train with the MaskSup bundle. Same as:",
        "  python -m monai.bundle run training --config_file bundles/masksup/train.json [--SETTING VALUE ...]",
        f"(the installed bundle: {folder}; a preset there is a second config file:",
        f"  --config_file \"['{folder / 'train.json'}','{folder / 'presets' / 'glas.json'}']\")", "",
        f"  --preset NAME  a dataset recipe merged over train.json: {', '.join(preset_names())}; its warm-up is",
        "      clamped to a shorter --epochs (an explicit --warmup_epochs is not)",
        "  --config_file F  the bundle config(s) to run instead of the installed train.json", "",
        "settings (a name that is none is refused; lists and objects as JSON, e.g. --img_size \"[256,256]\"):",
        cli_help(),
    ])


def _split_option(argv: list[str], name: str) -> tuple[list[str], str | None]:
    """``argv`` without ``--name VALUE`` / ``--name=VALUE``, and that value (``None`` when absent)."""
    rest, value, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == f"--{name}":
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ValueError(f"--{name} needs a value")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, value


def _overrides(argv: list[str]) -> dict[str, Any]:
    """The ``--key value`` pairs of ``argv``, values parsed as the bundle's command line parses them."""
    from fire.parser import DefaultParseValue

    out: dict[str, Any] = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("--"):
            continue
        key, _, value = arg[2:].partition("=")
        if not _:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("--") else "True"
        out[key] = DefaultParseValue(value)
    return out


def _config_files(argv: list[str], preset: str | None) -> list[str]:
    """``argv`` with ``--config_file`` set: the given file(s) or the installed train.json, then the preset's file;
    the preset's warm-up clamped to a short budget."""
    from fire.parser import DefaultParseValue

    from medseg_masksup.bundle_files import bundle_file, preset_file
    from medseg_masksup.training.settings import fitted_warmup

    argv, given = _split_option(argv, "config_file")
    if given is None:
        files = [os.fspath(bundle_file("train.json"))]
    else:
        parsed = DefaultParseValue(given)
        files = [str(f) for f in parsed] if isinstance(parsed, (list, tuple)) else [given]
    if preset is not None:
        path = preset_file(preset)
        files.append(os.fspath(path))
        fitted = fitted_warmup(preset, json.loads(path.read_text()), _overrides(argv))
        if fitted is not None:
            print(fitted[1], file=sys.stderr)
            argv = [*argv, "--warmup_epochs", str(fitted[0])]
    return ["--config_file", repr(files) if len(files) > 1 else files[0], *argv]


def main(argv: list[str]) -> int:
    from medseg_masksup.errors import UserError

    try:
        if any(a in ("-h", "--help") for a in argv):
            print(_help())
            return 0
        argv, preset = _split_option(list(argv), "preset")
        argv = _config_files(argv, preset)
    except (UserError, ValueError) as err:
        print(f"medseg-masksup train: error: {err}", file=sys.stderr)
        return 2
    from monai.bundle.scripts import run

    sys.argv = ["monai.bundle", "run", "training", *argv]
    import fire

    fire.Fire({"run": run}, command=["run", "training", *argv])
    return 0
