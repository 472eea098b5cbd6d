"""``medseg-masksup infer``: segment images / volumes with a trained checkpoint.

Same as ``python -m monai.bundle run --config_file bundles/masksup/inference.json --input ... --output_dir ... --ckpt ...``
(both call :func:`medseg_masksup.inference.folder.run_folder` with one :class:`~medseg_masksup.inference.options.InferenceOptions`).

Exit status: 0 when at least one input was segmented (unreadable files are listed on stderr and in
summary.csv); 1 when nothing could be segmented, when the output folder failed during the run (a full disk,
a vanished folder: one line naming the path, the summary says what was not written), or with ``--strict``
when any input failed; 2 when the run could not start (bad option, checkpoint, missing input, output folder
that is the input folder, is in use by another run, holds an earlier run's results without ``--overwrite`` or
results this program did not write, or is not writable).
"""

from __future__ import annotations

import argparse
import sys

from ..inference.options import add_inference_arguments, options_from_args
from ..quality.cli import add_uncertainty_arguments, uncertainty_overrides
from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup infer", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--input", required=True, help="an image/volume file, a DICOM series folder, or a folder of them (searched recursively)")
    p.add_argument("--output_dir", required=True, help="where masks, overlays and summary.csv go (must not be the input folder)")
    p.add_argument("--ckpt", required=True, nargs="+",
                   help="checkpoint model.pt written by training (or its run folder); several = an ensemble "
                        "(e.g. the fold models), probabilities averaged")
    add_inference_arguments(p, ("tta", "threshold", "keep_largest", "postprocessing", "fill_holes", "mode"))
    p.add_argument("--save_prob", action="store_true", help="also write the probability map")
    p.add_argument("--no_overlay", action="store_true", help="do not write overlay PNGs")
    add_uncertainty_arguments(p, "also write an uncertainty map per input and a quality score and review flag per case "
                                 "(threshold from quality.json beside the checkpoint; see docs/quality.md); the masks "
                                 "are unchanged")
    add_inference_arguments(p, ("intensity_window", "batch_size", "device", "progress"))
    p.add_argument("--overwrite", action="store_true",
                   help="remove the files an earlier run wrote into --output_dir (as listed in its manifest, and unchanged "
                        "since) before writing; nothing else there is ever deleted")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any input failed")
    return p


def main(argv: list[str]) -> int:
    return run_command("infer", build_parser(), argv, _infer)


def _infer(args: argparse.Namespace) -> int:
    from medseg_masksup.inference.folder import run_folder

    report = run_folder(input=args.input, output_dir=args.output_dir, ckpt=args.ckpt, options=options_from_args(args),
                        save_prob=args.save_prob, overlay=not args.no_overlay, verbose=False, raise_if_none=False,
                        overwrite=args.overwrite, uncertainty=args.uncertainty,
                        uncertainty_settings=uncertainty_overrides(args))
    *failed, totals = report.lines()
    for line in failed:
        print(line, file=sys.stderr)
    print(totals)
    if report.failure() is not None:
        print(f"medseg-masksup infer: error: {report.failure()}", file=sys.stderr)
        return 1
    if report.count("ok") == 0:
        print(f"medseg-masksup infer: error: nothing could be segmented in {args.input}", file=sys.stderr)
        return 1
    return 1 if args.strict and report.count("error") else 0
