"""``medseg-masksup train [--config_file F] [--key value ...]``: run the training bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "bundles" / "masksup" / "train.json"


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(
            "usage: medseg-masksup train [--config_file train.json] [--epochs N] [--method masksup|context|baseline]\n"
            "       [--network unet|swinunetr|unetpp|attentionunet] [--datalist F | --dataset_dir D] [--output_dir D] ...\n"
            "Same as: python -m monai.bundle run training --config_file bundles/masksup/train.json [overrides]\n"
            "Every top-level key of train.json can be overridden; see bundles/masksup/README.md."
        )
        return 0
    if "--config_file" not in argv and not any(a.startswith("--config_file=") for a in argv):
        if not DEFAULT_CONFIG.is_file():
            print(f"medseg-masksup train: no --config_file given and {DEFAULT_CONFIG} is missing", file=sys.stderr)
            return 2
        argv = ["--config_file", os.fspath(DEFAULT_CONFIG), *argv]
    from monai.bundle.scripts import run

    sys.argv = ["monai.bundle", "run", "training", *argv]
    import fire

    fire.Fire({"run": run}, command=["run", "training", *argv])
    return 0
