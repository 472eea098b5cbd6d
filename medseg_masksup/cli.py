"""``medseg-masksup <command> ...``: one entry point; each command lives in ``medseg_masksup.commands``."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "train": ("medseg_masksup.commands.train", "train a model with the MaskSup bundle (bundle overrides pass through)"),
    "prepare": ("data_scripts.cli", "turn an official dataset layout into a validated datalist.json"),
    "infer": ("medseg_masksup.commands.infer", "segment new images/volumes with a trained checkpoint"),
    "evaluate": ("medseg_masksup.commands.evaluate", "score a checkpoint on a labelled datalist"),
    "robustness": ("medseg_masksup.commands.robustness", "Dice/IoU versus the share of the input hidden"),
    "compare": ("medseg_masksup.commands.compare", "study: baseline vs MaskSup over seeds and folds, paired statistics"),
    "export": ("medseg_masksup.commands.export", "export the bare backbone to TorchScript / ONNX"),
    "bench": ("medseg_masksup.commands.bench", "measure training/inference throughput and overheads"),
    "bundle-path": ("medseg_masksup.commands.bundle_path", "print where the installed bundle (train.json …) is"),
}


def _usage() -> str:
    lines = ["usage: medseg-masksup <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`medseg-masksup <command> --help` for the options of one command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"medseg-masksup: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            print(f"medseg-masksup: command {name!r} is not available in this installation", file=sys.stderr)
            return 2
        raise
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
