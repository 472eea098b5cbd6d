"""``medseg-masksup train [--config_file F] [--key value ...]``: run the training bundle."""

from __future__ import annotations

import os
import sys


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
        from medseg_masksup.bundle_files import bundle_file
        from medseg_masksup.errors import UserError

        try:
            config = bundle_file("train.json")
        except UserError as err:
            print(f"medseg-masksup train: error: {err}", file=sys.stderr)
            return 2
        argv = ["--config_file", os.fspath(config), *argv]
    from monai.bundle.scripts import run

    sys.argv = ["monai.bundle", "run", "training", *argv]
    import fire

    fire.Fire({"run": run}, command=["run", "training", *argv])
    return 0
