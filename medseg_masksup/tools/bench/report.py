"""The benchmark results as a Markdown report."""

from __future__ import annotations

from typing import Any

from .settings import BASELINE


def _fmt_ms(summary: dict[str, Any]) -> str:
    return f"{summary['median']:.1f} ({summary['min']:.1f}–{summary['max']:.1f})"


def markdown_report(results: dict[str, Any]) -> str:
    """The results as markdown: a header line, the training table, the other measurements, the targets."""
    s, env = results["settings"], results["environment"]
    lines = [
        f"**{s['network']}/{s['network_size']}, {'×'.join(str(i) for i in s['img_size'])}, batch {s['batch']}** on "
        f"{env['device']} ({env['device_name']}, {env['torch_threads']} torch threads), AMP {env['amp']}, "
        f"channels_last {s['channels_last']}, compile {s['compile']}"
        f"{', freed memory kept (mallopt)' if env.get('freed_memory_kept') else ''} · timer {env['timer']} · "
        f"{s['rounds']} interleaved rounds × {s['steps']} steps after {s['warmup']} warm-up round(s) · "
        f"medians (min–max over rounds); torch {env['torch']}, MONAI {env['monai']}"
        + (f"; load average {env['load_average_start']:.2f} → {env['load_average_end']:.2f}"
           if env.get("load_average_start") is not None else ""),
        "",
        "| training variant | step (ms) | images/s | step ÷ baseline | peak memory (MB) | peak above start (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, t in results["train"].items():
        ratio = results["ratios"].get(f"{name}/{BASELINE}", {}).get("median", 1.0 if name == BASELINE else float("nan"))
        lines.append(f"| {name} | {_fmt_ms(t['step_ms'])} | {t['images_per_s']:.1f} | {ratio:.2f} | "
                     f"{t['peak_memory_mb']:.0f} | {t['peak_memory_above_start_mb']:.0f} |")
    lines += ["", f"peak memory: {env['memory']}", "", "| measurement | value |", "|---|---|"]
    mask = results.get("mask")
    if mask:
        lines.append(f"| mask generation ({mask['generator']}), per batch | {_fmt_ms(mask['ms_per_batch'])} ms = "
                     f"{100 * mask['share_of_step']:.1f} % of a {mask['reference_variant']} step |")
    data = results["data"]
    fastest = data["fastest_trainer_images_per_s"]
    lines.append(f"| data loader: bundle {data['loader']} over {data['dataset']} ({data['n_items']} items, cached in "
                 f"{data['cache_s']:.1f} s) | {data['bundle_loader']['images_per_s']:.0f} images/s = "
                 f"{data['factor_vs_fastest_trainer']:.1f}× the fastest trainer ({fastest:.1f} images/s) |")
    lines.append(f"| data loader: MONAI DataLoader, num_workers 0, same dataset | "
                 f"{data['plain_dataloader']['images_per_s']:.0f} images/s |")
    inf = results["inference"]
    for label, summary in inf["latency_ms"].items():
        lines.append(f"| inference latency, {label}, batch {inf['batch']} | {_fmt_ms(summary)} ms |")
    lines.append(f"| inference latency ratio ({inf['ratio']['of']}) | {inf['ratio']['median']:.3f} |")
    lines += ["", "| target | measured | met |", "|---|---:|:---:|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['value']:.3f} | {'yes' if t['met'] else '**no**'} |")
    profile = results.get("profile")
    if profile:
        lines += ["", (f"Where a step's time goes (one synchronised extra run per variant; operator tables in "
                       f"`{profile['dir']}`):"), ""]
        variants = list(profile["phases"])
        phases = list(next(iter(profile["phases"].values())))
        lines.append("| phase | " + " | ".join(f"{v} (ms)" for v in variants) + " |")
        lines.append("|---|" + "---:|" * len(variants))
        for phase in phases:
            cells = [f"{profile['phases'][v][phase]['ms_per_step']:.1f} ({100 * profile['phases'][v][phase]['share']:.0f} %)"
                     for v in variants]
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
