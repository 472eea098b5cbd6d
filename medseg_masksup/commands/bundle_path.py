"""``medseg-masksup bundle-path [FILE]``: where the installed MaskSup bundle is, for ``python -m monai.bundle``.

In a source checkout the bundle is ``bundles/masksup``; a wheel installs it inside the package
(``…/site-packages/medseg_masksup/bundles/masksup``), so outside a checkout the bundle commands take
``--config_file "$(medseg-masksup bundle-path train.json)"``. Prints the folder, or the path of ``FILE`` in it
(``train.json``, ``inference.json``, ``presets/glas.json`` …); a file the bundle lacks is exit 2, one line.
"""

from __future__ import annotations

import argparse

from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup bundle-path",
                                description="Print the installed MaskSup bundle folder, or one of its files.")
    p.add_argument("file", nargs="?", default=None,
                   help="a file of the bundle: train.json, inference.json, evaluate.json, metadata.json, presets/glas.json …")
    return p


def main(argv: list[str]) -> int:
    return run_command("bundle-path", build_parser(), argv, _print)


def _print(args: argparse.Namespace) -> None:
    from medseg_masksup.bundle_files import bundle_dir, bundle_file

    print(bundle_file(args.file) if args.file else bundle_dir())
