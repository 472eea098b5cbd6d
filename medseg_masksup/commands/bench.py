"""``medseg-masksup bench``: training throughput of baseline / MaskSup, mask cost, data loader, inference.

Prints a markdown table (and the targets of the performance issue, met or not) and, with ``--json``,
writes every figure. Example (the figures of docs/benchmarks.md)::

    medseg-masksup bench --network unet --network_size small --img_size 128 --batch 8 \\
        --steps 10 --rounds 5 --json bench.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..tools.bench.measure import TIMERS
from ..tools.bench.report import markdown_report
from ..tools.bench.runner import run_benchmark
from ..tools.bench.settings import VARIANTS, BenchSettings
from ..io.atomic import write_json
from . import run_command


def _img_size(text: str) -> tuple[int, ...]:
    sizes = tuple(int(v) for v in re.findall(r"\d+", text))
    if not sizes or len(sizes) > 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"image size must be 1 to 3 positive integers, e.g. 128 or [128,128]; got {text!r}")
    return sizes * 2 if len(sizes) == 1 else sizes


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    return names


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--set expects key=value (a bundle id and a JSON value), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="medseg-masksup bench",
        description="Measure, interleaved in one process: training throughput of baseline, masksup-sequential "
        "and masksup-concat (the bundle's own trainer), mask generation as a share of a step, the bundle's "
        "data loader versus what the trainer consumes, inference latency of a bare backbone versus a "
        "MaskSup-trained model, and peak memory. Prints markdown; --json writes everything.",
    )
    p.add_argument("--network", default="unet", help="unet | swinunetr | unetpp | attentionunet (default unet)")
    p.add_argument("--network_size", default="small", help="small | base (default small)")
    p.add_argument("--img_size", type=_img_size, default=(128, 128), help="e.g. 128 or [128,128] (default 128)")
    p.add_argument("--batch", type=int, default=8, help="training batch size (default 8)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps per variant per round (default 10)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads (default 0: torch's choice); 1 is steadier on a loaded shared CPU")
    p.add_argument("--amp", action="store_true", help="autocast: bf16 where supported, fp16 + GradScaler otherwise")
    p.add_argument("--channels_last", action="store_true", help="channels-last weights and inputs")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbone (warm-up rounds pay the compilation)")
    p.add_argument("--cudnn_benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True (CUDA)")
    p.add_argument("--plain_tensors", action="store_true",
                   help="feed the network plain tensors instead of MONAI MetaTensors (what the trainer would gain)")
    p.add_argument("--keep_memory", action="store_true",
                   help="glibc: keep freed memory in the process (mallopt) instead of page-faulting it back every step")
    p.add_argument("--timer", choices=TIMERS, default="wall",
                   help="CPU timer: wall (perf_counter) or cpu (this process's CPU time: what a step costs on a core of "
                        "its own; steadier on a shared, loaded machine, use with --threads 1). CUDA always uses events")
    p.add_argument("--variants", type=_variants, default=tuple(VARIANTS),
                   help=f"comma-separated subset of {','.join(VARIANTS)} (default all)")
    p.add_argument("--infer_batch", type=int, default=1, help="batch for the inference latency (default 1)")
    p.add_argument("--infer_steps", type=int, default=50, help="inference calls per model per round (default 50)")
    p.add_argument("--loader_batches", type=int, default=0,
                   help="batches pulled from the data loader per round (default 0: one epoch)")
    p.add_argument("--config_file", default="", help="training bundle config (default: the bundle's train.json)")
    p.add_argument("--output_dir", default="runs", help="where the bundle keeps its embedded data set (default runs)")
    p.add_argument("--datalist", default="", help="a prepared datalist.json (default: the embedded synthetic set)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="ID=VALUE",
                   help="any further bundle override, e.g. --set mask_kind=patch (repeatable)")
    p.add_argument("--profile", default="", metavar="DIR",
                   help="also time each step's phases and write torch.profiler operator tables to DIR")
    p.add_argument("--json", default="", metavar="FILE", help="write all figures as JSON")
    p.add_argument("--markdown", default="", metavar="FILE", help="also write the markdown report to FILE")
    p.add_argument("--quiet", action="store_true", help="print only the report")
    return p


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    return BenchSettings(
        network=args.network,
        network_size=args.network_size,
        img_size=args.img_size,
        batch=args.batch,
        steps=args.steps,
        rounds=args.rounds,
        warmup=args.warmup,
        device=args.device,
        threads=args.threads,
        amp=args.amp,
        channels_last=args.channels_last,
        compile=args.compile,
        cudnn_benchmark=args.cudnn_benchmark,
        plain_tensors=args.plain_tensors,
        keep_memory=args.keep_memory,
        timer=args.timer,
        variants=args.variants,
        infer_batch=args.infer_batch,
        infer_steps=args.infer_steps,
        loader_batches=args.loader_batches,
        config_file=args.config_file,
        output_dir=args.output_dir,
        datalist=args.datalist,
        seed=args.seed,
        overrides=dict(args.overrides),
        profile_dir=args.profile,
    )


def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    try:
        settings = settings_from_args(args)
    except ValueError as err:
        print(f"medseg-masksup bench: error: {err}", file=sys.stderr)
        return 2
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    results = run_benchmark(settings, log=log)
    report = markdown_report(results)
    results["command"] = "medseg-masksup bench " + " ".join(argv)
    print(report, flush=True)
    if args.json:
        log(f"figures written to {write_json(args.json, results)}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_command("bench", build_parser(), argv, lambda args: _bench(args, argv))


if __name__ == "__main__":
    sys.exit(main())
