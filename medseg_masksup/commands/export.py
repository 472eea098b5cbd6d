"""``medseg-masksup export``: the bare backbone of a checkpoint as TorchScript and ONNX, parity-checked.

TorchScript goes through ``monai.bundle ckpt_export`` (equivalent to ``python -m monai.bundle ckpt_export
network_def --filepath model.ts --ckpt_file C --meta_file bundles/masksup/metadata.json
--config_file bundles/masksup/inference.json --key_in_ckpt model --ckpt C``).
``export.json`` records what to do around the exported network (channels, bit depth, spatial mode, size and
scale, intensity mapping, sliding window, sigmoid and threshold). ONNX needs the ``export`` extra
(``pip install "medseg-masksup[export]"``); without it TorchScript is still written, then one line names the extra.
Exit status: 0 when every export matches PyTorch within tolerance, 1 when one does not, 2 on a user error
(including a format whose extra is not installed).
"""

from __future__ import annotations

import argparse

from . import run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medseg-masksup export", description="Export the backbone to TorchScript / ONNX.")
    p.add_argument("--ckpt", required=True, help="checkpoint model.pt written by training (or its run folder)")
    p.add_argument("--output_dir", default="export",
                   help="where model.ts, model.onnx and export.json (the preprocessing to apply around the model) go")
    p.add_argument("--formats", nargs="+", default=["torchscript", "onnx"], choices=("torchscript", "onnx"),
                   help='onnx needs the export extra: pip install "medseg-masksup[export]"')
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    return p


def main(argv: list[str]) -> int:
    from medseg_masksup.errors import ExportParityError

    return run_command("export", build_parser(), argv, _export, exit_codes=((ExportParityError, 1),))


def _export(args: argparse.Namespace) -> None:
    from medseg_masksup.inference.export import export_checkpoint

    export_checkpoint(args.ckpt, args.output_dir, formats=args.formats, opset=args.opset)
