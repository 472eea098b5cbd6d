"""``medseg-masksup infer``: segment images / volumes with a trained checkpoint.

Same as ``python -m monai.bundle run --config_file bundles/masksup/inference.json --input ... --output_dir ... --ckpt ...``
(both call :func:`medseg_masksup.inference.run_folder`).

Exit status: 0 when at least one input was segmented (unreadable files are listed on stderr and in
summary.csv); 1 when nothing could be segmented, or with ``--strict`` when any input failed; 2 when
the run could not start (bad option, checkpoint, missing input, output folder that is the input folder, holds
an earlier run's results without ``--overwrite``, or is not writable).
"""

from __future__ import annotations

import argparse
import sys

from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup infer", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("--input", required=True, help="an image/volume file, a DICOM series folder, or a folder of them (searched recursively)")
    p.add_argument("--output_dir", required=True, help="where masks, overlays and summary.csv go (must not be the input folder)")
    p.add_argument("--ckpt", required=True, help="checkpoint model.pt written by training (or its run folder)")
    p.add_argument("--tta", action="store_true", help="average predictions over horizontal/vertical flips")
    p.add_argument("--threshold", type=float, default=None, help="probability threshold (default: the one recorded at training, 0.5)")
    p.add_argument("--keep_largest", action="store_true", help="keep only the largest connected component")
    p.add_argument("--fill_holes", action="store_true", help="fill holes inside the mask")
    p.add_argument("--mode", choices=("resize", "sliding"), default="resize",
                   help="resize whole image to the training size (default) or slide training-size windows at native resolution")
    p.add_argument("--save_prob", action="store_true", help="also write the probability map")
    p.add_argument("--no_overlay", action="store_true", help="do not write overlay PNGs")
    p.add_argument("--intensity_window", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None,
                   help="map this intensity range onto the training range (default: only inputs outside it, by their min..max)")
    p.add_argument("--batch_size", type=int, default=8, help="slices / windows per forward pass")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of an earlier run in --output_dir (refused otherwise)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if any input failed")
    return p


def main(argv: list[str]) -> int:
    return run_command("infer", build_parser(), argv, _infer)


def _infer(args: argparse.Namespace) -> int:
    from medseg_masksup.inference import run_folder

    report = run_folder(
        input=args.input, output_dir=args.output_dir, ckpt=args.ckpt, tta=args.tta, threshold=args.threshold,
        keep_largest=args.keep_largest, fill_holes=args.fill_holes, mode=args.mode, save_prob=args.save_prob,
        overlay=not args.no_overlay, intensity_window=args.intensity_window, batch_size=args.batch_size,
        device=args.device, progress=not args.no_progress, verbose=False, raise_if_none=False,
        overwrite=args.overwrite,
    )
    for row in report.rows:
        if row["status"] != "ok":
            print(f"{row['status']}: {row['message']}", file=sys.stderr)
    print(report.lines()[-1])
    if report.count("ok") == 0:
        print(f"medseg-masksup infer: error: nothing could be segmented in {args.input}", file=sys.stderr)
        return 1
    return 1 if args.strict and report.count("error") else 0
