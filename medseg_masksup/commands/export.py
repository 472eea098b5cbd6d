"""``medseg-masksup export``: the bare backbone of a checkpoint as TorchScript and ONNX, parity-checked.

TorchScript goes through ``monai.bundle ckpt_export`` (equivalent to ``python -m monai.bundle ckpt_export
network_def --filepath model.ts --ckpt_file C --meta_file bundles/masksup/metadata.json
--config_file bundles/masksup/inference.json --key_in_ckpt model --ckpt C``).
Exit status: 0 when every export matches PyTorch within tolerance, 1 when one does not, 2 on a user error.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup export", description="Export the backbone to TorchScript / ONNX.")
    p.add_argument("--ckpt", required=True, help="checkpoint model.pt written by training (or its run folder)")
    p.add_argument("--output_dir", default="export", help="where model.ts, model.onnx and export.json go")
    p.add_argument("--formats", nargs="+", default=["torchscript", "onnx"], choices=("torchscript", "onnx"))
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    return p


def main(argv: list[str]) -> int:
    from medseg_masksup.io.errors import user_error_types

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from medseg_masksup.export import ExportParityError, export_checkpoint

    try:
        export_checkpoint(args.ckpt, args.output_dir, formats=args.formats, opset=args.opset)
    except user_error_types() as err:
        print(f"medseg-masksup export: error: {err}", file=sys.stderr)
        return 1 if isinstance(err, ExportParityError) else 2
    return 0
