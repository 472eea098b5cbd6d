"""``medseg-masksup evaluate``: score a checkpoint on a labelled datalist (per-case CSV and MLflow table,
mean ± std with median and IQR, overlays of the worst cases, an MLflow run nested under the training run;
with ``--uncertainty`` the quality scores judged by risk–coverage, and ``--write_quality`` the review threshold).

Same as ``python -m monai.bundle run --config_file bundles/masksup/evaluate.json --ckpt ... --datalist ...``.
Exit status: 0 on success, 1 when no case could be evaluated, 2 when the run could not start.
"""

from __future__ import annotations

import argparse

from ..quality.settings import SCORES

from ..inference.options import add_inference_arguments, options_from_args
from ..quality.cli import add_uncertainty_arguments, uncertainty_overrides
from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup evaluate", description="Score a checkpoint on a labelled datalist.")
    p.add_argument("--ckpt", required=True, nargs="+",
                   help="checkpoint model.pt written by training (or its run folder); several = an ensemble "
                        "(e.g. the fold models), probabilities averaged")
    p.add_argument("--datalist", required=True, help="datalist.json with image/label items")
    p.add_argument("--split", default="auto", choices=("auto", "test", "validation", "training", "heldout", "all"),
                   help="items to score (auto: labelled test, else validation, else the held-out fold)")
    p.add_argument("--output_dir", default="evaluation", help="where per_case.csv and summary.json go")
    p.add_argument("--tracking_uri", default=None, help="MLflow store (default sqlite:///<output_dir>/mlflow.db); "
                   "give the training store, e.g. sqlite:///runs/mlflow.db, to file the run under the training run")
    p.add_argument("--run_name", default=None, help="MLflow run name (default evaluate-<method>-<split>)")
    add_inference_arguments(p, ("tta", "threshold", "keep_largest", "postprocessing", "fill_holes", "mode", "intensity_window", "batch_size",
                                "device", "progress"))
    p.add_argument("--worst_cases", type=int, default=4, help="overlay images of the N lowest-Dice cases (0: none)")
    add_uncertainty_arguments(p, "also score each case's candidate quality scores (seeded passes beside the same mask) "
                                 "and judge them by risk-coverage against Dice (AURC table, risk_coverage.png); see "
                                 "docs/quality.md")
    p.add_argument("--write_quality", action="store_true",
                   help="with --uncertainty: choose the review threshold on these held-out cases and write quality.json "
                        "beside the checkpoint, for infer --uncertainty")
    p.add_argument("--review_coverage", type=float, default=0.9,
                   help="share of held-out cases the review threshold keeps unflagged (default 0.9)")
    p.add_argument("--quality_score", default="auto", choices=("auto", *SCORES),
                   help="score the review flag uses (auto: the lowest AURC on these cases)")
    return p


def main(argv: list[str]) -> int:
    from medseg_masksup.errors import NothingProcessedError

    return run_command("evaluate", build_parser(), argv, _evaluate, exit_codes=((NothingProcessedError, 1),))


def _evaluate(args: argparse.Namespace) -> None:
    from medseg_masksup.inference.evaluation import evaluate_checkpoint

    evaluate_checkpoint(ckpt=args.ckpt, datalist=args.datalist, output_dir=args.output_dir, split=args.split,
                        options=options_from_args(args), tracking_uri=args.tracking_uri, run_name=args.run_name,
                        worst_cases=args.worst_cases, uncertainty=args.uncertainty,
                        uncertainty_settings=uncertainty_overrides(args), write_quality=args.write_quality,
                        review_coverage=args.review_coverage, quality_score=args.quality_score)
