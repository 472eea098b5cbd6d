"""``medseg-masksup robustness``: Dice / IoU versus the share of the input hidden (table, plot, MLflow).

Same as ``python -m monai.bundle run robustness --config_file bundles/masksup/evaluate.json --ckpt ... --datalist ...``.
Compare models by passing another run's table: ``--compare baseline_out/robustness.csv``.
Exit status: 0 on success, 2 on a user error (bad option, checkpoint, datalist).
"""

from __future__ import annotations

import argparse

from ..inference.options import add_inference_arguments, options_from_args
from . import run_command


def build_parser() -> argparse.ArgumentParser:
    from medseg_masksup.inference.robustness import DEFAULT_RATIOS

    p = argparse.ArgumentParser(prog="medseg-masksup robustness", description="Dice/IoU versus the fraction of the input masked.")
    p.add_argument("--ckpt", required=True, help="checkpoint model.pt (baseline or MaskSup) or its run folder")
    p.add_argument("--datalist", required=True, help="datalist.json with image/label items")
    p.add_argument("--split", default="auto", choices=("auto", "test", "validation", "training", "heldout", "all"))
    p.add_argument("--output_dir", default="robustness", help="where robustness.csv / .png go")
    p.add_argument("--kinds", default=None, help="mask kinds, comma separated, or 'all' (default: the training mask kind)")
    p.add_argument("--ratios", type=float, nargs="+", default=list(DEFAULT_RATIOS), help="fractions hidden (0 to <1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="mask seeds (results pooled over seeds)")
    p.add_argument("--label", default=None, help="curve label in table and plot (default <method>/<network>)")
    p.add_argument("--compare", nargs="*", default=[], help="robustness.csv tables of other models to draw alongside")
    p.add_argument("--tracking_uri", default=None, help="MLflow store (default sqlite:///<output_dir>/mlflow.db)")
    p.add_argument("--run_name", default=None, help="MLflow run name (default robustness-<method>)")
    add_inference_arguments(p, ("threshold", "batch_size", "device", "progress"))
    return p


def main(argv: list[str]) -> int:
    return run_command("robustness", build_parser(), argv, _robustness)


def _robustness(args: argparse.Namespace) -> None:
    from medseg_masksup.inference.robustness import run_robustness

    run_robustness(ckpt=args.ckpt, datalist=args.datalist, output_dir=args.output_dir, kinds=args.kinds, ratios=args.ratios,
                   seeds=args.seeds, split=args.split, label=args.label, compare=args.compare,
                   options=options_from_args(args), tracking_uri=args.tracking_uri, run_name=args.run_name)
