"""Command line: ``medseg-masksup prepare <dataset> --src DIR --out DIR [options]``.

Exit status: 0 on success (problems in non-strict mode are reported and the bad
pairs skipped), 1 when preparation fails (one ``error:`` line naming the path and
the problem; in ``--strict`` mode every problem is listed first), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_scripts.prepare import DATALIST, SUMMARY, Options, default_workers, prepare
from data_scripts.problems import PrepareError
from data_scripts.registry import DATASETS

MAX_NOTED = 5

DESCRIPTION = """\
Turn a public segmentation dataset, in its official download layout, into a
validated MONAI datalist for the training bundle.

Writes under --out: masks/<split>/<id>.png (binary, 8-bit, 0 = background,
255 = foreground), datalist.json (training with a 'fold' per item, validation,
test; paths relative to --out, images left in place are absolute) and
dataset.json (counts, image sizes, foreground fractions, problems).  Every pair is
checked before anything is written; bad pairs are reported and skipped (--strict:
nothing is written if any problem is found).  Re-running is idempotent.
"""


def _at_least(minimum: int):
    """argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def build_parser(prog: str = "medseg-masksup prepare") -> argparse.ArgumentParser:
    """The argument parser, one sub-command per dataset."""
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="dataset", metavar="<dataset>", required=True)
    for name, spec in DATASETS.items():
        p = sub.add_parser(name, help=spec.help, description=f"{spec.title}. {spec.layouts}")
        p.add_argument("--src", type=Path, required=True, metavar="DIR", help="the dataset as downloaded and extracted")
        p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder for masks and JSON files")
        p.add_argument("--folds", type=_at_least(2), default=5, help="number of cross-validation folds (default: 5)")
        p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment (default: 0)")
        p.add_argument("--strict", action="store_true", help="fail, writing nothing, if any problem is found")
        p.add_argument(
            "--copy-images",
            action="store_true",
            help="copy images to --out/images/<split>/ (relative paths) instead of pointing at --src",
        )
        p.add_argument("--dry-run", action="store_true", help="validate and report only; write nothing")
        p.add_argument(
            "--workers",
            type=_at_least(1),
            default=default_workers(),
            help="threads used to decode images (default: %(default)s)",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bars or notes; problems and errors only")
        if spec.add_arguments is not None:
            spec.add_arguments(p)
    return parser


def _list(paths, limit: int = MAX_NOTED) -> str:
    names = [str(p) for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def main(argv: list[str] | None = None, *, prog: str = "medseg-masksup prepare") -> int:
    """Run the preparer; returns the exit status (never raises for user errors)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or usage error (2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    known = {"dataset", "src", "out", "folds", "seed", "strict", "copy_images", "dry_run", "workers", "quiet"}
    options = Options(
        src=args.src,
        out=args.out,
        folds=args.folds,
        seed=args.seed,
        strict=args.strict,
        copy_images=args.copy_images,
        dry_run=args.dry_run,
        workers=args.workers,
        progress=False if args.quiet else None,
        extra={k: v for k, v in vars(args).items() if k not in known},
    )
    try:
        result = prepare(args.dataset, options)
    except PrepareError as exc:  # includes ProblemsFound (--strict)
        for p in exc.problems:
            print(f"problem: {p.message}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

    for p in result.problems:
        print(f"problem: {p.message}", file=sys.stderr)
    c = result.counts
    n = sum(c.values())
    say = (lambda *a: None) if args.quiet else print
    say(
        f"{args.dataset} [{result.variant}]: {n} pairs accepted "
        f"(training {c['training']}, validation {c['validation']}, test {c['test']}); "
        f"{len(result.problems)} problem{'s' if len(result.problems) != 1 else ''}"
        + (" (affected pairs skipped)" if result.problems else "")
    )
    if result.ignored:
        say(f"note: ignored {len(result.ignored)} files that are not part of the layout: {_list(result.ignored)}")
    if args.dry_run:
        say("dry run: nothing written")
        return 0
    images = f"{result.images_copied} images copied" if args.copy_images else "images left in place"
    say(f"masks: {result.masks_written} written, {result.masks_unchanged} unchanged; {images}")
    if result.removed:
        say(f"removed {len(result.removed)} stale files from an earlier run")
    if result.kept:
        say(
            f"kept {len(result.kept)} files an earlier run wrote for pairs skipped now "
            f"(not in the datalist; fix the problems above and re-run): {_list(result.kept)}"
        )
    say(f"datalist: {Path(args.out) / DATALIST}  summary: {Path(args.out) / SUMMARY}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
