"""``medseg-masksup evaluate``: score a checkpoint on a labelled datalist (per-case CSV and MLflow table,
mean ± std with median and IQR, overlays of the worst cases, an MLflow run nested under the training run).

Same as ``python -m monai.bundle run --config_file bundles/masksup/evaluate.json --ckpt ... --datalist ...``.
Exit status: 0 on success, 1 when no case could be evaluated, 2 when the run could not start.
"""

from __future__ import annotations

import argparse

from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup evaluate", description="Score a checkpoint on a labelled datalist.")
    p.add_argument("--ckpt", required=True, help="checkpoint model.pt written by training (or its run folder)")
    p.add_argument("--datalist", required=True, help="datalist.json with image/label items")
    p.add_argument("--split", default="auto", choices=("auto", "test", "validation", "training", "heldout", "all"),
                   help="items to score (auto: labelled test, else validation, else the held-out fold)")
    p.add_argument("--output_dir", default="evaluation", help="where per_case.csv and summary.json go")
    p.add_argument("--tracking_uri", default=None, help="MLflow store (default sqlite:///<output_dir>/mlflow.db); "
                   "give the training store, e.g. sqlite:///runs/mlflow.db, to file the run under the training run")
    p.add_argument("--run_name", default=None, help="MLflow run name (default evaluate-<method>-<split>)")
    p.add_argument("--tta", action="store_true", help="average predictions over flips")
    p.add_argument("--threshold", type=float, default=None, help="probability threshold (default: recorded at training)")
    p.add_argument("--keep_largest", action="store_true", help="keep only the largest connected component")
    p.add_argument("--fill_holes", action="store_true", help="fill holes inside the mask")
    p.add_argument("--mode", choices=("resize", "sliding"), default="resize", help="as for infer")
    p.add_argument("--intensity_window", type=float, nargs=2, metavar=("LOW", "HIGH"), default=None, help="as for infer")
    p.add_argument("--worst_cases", type=int, default=4, help="overlay images of the N lowest-Dice cases (0: none)")
    p.add_argument("--device", default=None, help="cpu, cuda ... (default: cuda if available)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str]) -> int:
    from medseg_masksup.io.errors import NothingProcessedError

    return run_command("evaluate", build_parser(), argv, _evaluate, exit_codes=((NothingProcessedError, 1),))


def _evaluate(args: argparse.Namespace) -> None:
    from medseg_masksup.evaluation import evaluate_checkpoint

    evaluate_checkpoint(
        ckpt=args.ckpt, datalist=args.datalist, output_dir=args.output_dir, split=args.split, tta=args.tta,
        threshold=args.threshold, keep_largest=args.keep_largest, fill_holes=args.fill_holes, mode=args.mode,
        intensity_window=args.intensity_window, tracking_uri=args.tracking_uri, run_name=args.run_name,
        device=args.device, progress=not args.no_progress, worst_cases=args.worst_cases,
    )
