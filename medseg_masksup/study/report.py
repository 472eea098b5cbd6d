"""A study's results as tables and figures: what each arm reaches, what MaskSup adds, at what cost.

- ``summary.csv`` / the markdown table: per arm and checkpoint (``best`` = selected on validation,
  ``final`` = last epoch), mean ± std of Dice and IoU over runs, and the pooled per-case mean with its
  bootstrap 95 % CI.
- ``paired.csv``: every arm against ``baseline`` on the same cases (per case, averaged over the seeds
  both arms finished): mean difference, bootstrap 95 % CI, Wilcoxon p, wins / losses.
- ``tta.csv`` (studies run with ``--tta``, once every compared run has its ``final-tta`` evaluation): per
  arm, the final checkpoint with flip TTA minus without, paired on the same cases; ``final-tta`` rows
  ("final + TTA") then also appear in the tables above.
- ``postprocessing.csv`` / ``postprocessing.json`` (studies run with ``--keep_largest``): per arm, keeping
  only the largest connected component minus not, paired on the same cases (without and, where the study
  has it, with TTA), and the choice nnU-Net makes from its cross-validation: keep it where it raises the
  mean Dice of the held-out cases.
- ``variants.csv`` (studies with arms defined by ``--arm``): each such arm minus the built-in arm of its
  method on the same cases (``masksup-ema`` − ``masksup``), i.e. what its own settings change.
- ``seeds.csv`` (studies with several seeds): per seed, each arm's mean Dice of the final checkpoint over
  that seed's held-out cases and each arm minus ``baseline``; then mean ± std over the seeds that finished
  every fold (what "mean of 3 seeds" means, and how much a seed moves it).
- ``bars.png`` (means with CIs), ``robustness.png`` (Dice versus share hidden, every arm),
  ``cases.png`` (image, truth, baseline, MaskSup on the same held-out cases).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..io import figure_style as style
from .plan import REFERENCE_ARM
from ..inference.postprocessing import postprocessing_record
from .statistics import bootstrap_ci, paired_difference

METRICS = ("dice", "iou")
#: the evaluation of the final checkpoint with flip TTA (``compare --tta``), shown next to ``final``
TTA_KIND = "final-tta"
#: the post-processed evaluations (``compare --keep_largest``) and the evaluation each one post-processes
POSTPROCESSED_KINDS = {"final-largest": "final", "final-tta-largest": TTA_KIND}
#: evaluations of the final checkpoint the tables show after ``final``, once every compared run has them
OPTIONAL_KINDS = (TTA_KIND, *POSTPROCESSED_KINDS)
LABELS = {TTA_KIND: "final + TTA", "final-largest": "final + largest component",
          "final-tta-largest": "final + TTA + largest component"}


def _read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def per_case_scores(results: Sequence[dict], checkpoint: str = "final") -> dict[str, dict[tuple[int, str], dict]]:
    """``{arm: {(seed, case): {"dice", "iou", "fold"}}}`` from each run's ``per_case.csv``."""
    out: dict[str, dict[tuple[int, str], dict]] = defaultdict(dict)
    for result in results:
        for row in _read_csv(result["eval"][checkpoint]["per_case_csv"]):
            if row.get("status") != "ok":
                continue
            out[result["arm"]][(int(result["seed"]), row["case"])] = {
                "dice": float(row["dice"]), "iou": float(row["iou"]), "fold": int(result["fold"])}
    return out


def arm_summary(results: Sequence[dict], checkpoint: str = "final") -> list[dict]:
    """One row per arm: runs, cases, mean ± std over runs, pooled per-case mean and its bootstrap CI."""
    scores = per_case_scores(results, checkpoint)
    rows = []
    for arm in sorted(scores, key=_arm_order):
        row = {"arm": arm, "checkpoint": checkpoint, "runs": sum(1 for r in results if r["arm"] == arm)}
        by_case: dict[str, list[dict]] = defaultdict(list)
        for (_, case), value in scores[arm].items():
            by_case[case].append(value)
        row["cases"] = len(by_case)
        for metric in METRICS:
            run_means = [r["eval"][checkpoint]["metrics"][metric]["mean"] for r in results if r["arm"] == arm]
            case_means = np.array([np.mean([v[metric] for v in values]) for values in by_case.values()])
            low, high = bootstrap_ci(case_means)
            row.update({f"{metric}_mean": float(np.mean(case_means)), f"{metric}_run_std": float(np.std(run_means)),
                        f"{metric}_ci_low": low, f"{metric}_ci_high": high})
        rows.append(row)
    return rows


def paired_against_reference(results: Sequence[dict], checkpoint: str = "final", reference: str = REFERENCE_ARM) -> list[dict]:
    """Each other arm minus ``reference`` on the (seed, case) pairs both finished, averaged over seeds per case."""
    scores = per_case_scores(results, checkpoint)
    if reference not in scores:
        return []
    return _paired_rows(((arm, reference, scores[arm], scores[reference]) for arm in scores if arm != reference), checkpoint)


def variants_against_their_method(results: Sequence[dict], checkpoint: str = "final") -> list[dict]:
    """Each user-defined arm minus the built-in arm of its method (``masksup-ema`` − ``masksup``) on the same
    (seed, case) pairs: what the arm's own settings change."""
    from .plan import ARMS

    scores = per_case_scores(results, checkpoint)
    methods = {r["arm"]: r.get("method") for r in results}
    return _paired_rows(((arm, methods[arm], scores[arm], scores[methods[arm]]) for arm in scores
                         if arm not in ARMS and methods.get(arm) in scores), checkpoint)


def evaluation_gain(results: Sequence[dict], kind: str, reference: str) -> list[dict]:
    """Per arm, evaluation ``kind`` minus evaluation ``reference`` of the same runs, on the same (seed, case) pairs."""
    other, base = per_case_scores(results, kind), per_case_scores(results, reference)
    return _paired_rows(((arm, reference, other[arm], base[arm]) for arm in set(other) & set(base)), kind)


def _paired_rows(pairs: Iterable[tuple[str, str, dict, dict]], checkpoint: str) -> list[dict]:
    """One :func:`_paired_row` per ``(arm, reference name, arm's scores, reference's scores)``, in arm order,
    labelled with ``checkpoint``; pairs without a common case are left out."""
    rows = []
    for arm, reference, other, base in sorted(pairs, key=lambda pair: _arm_order(pair[0])):
        row = _paired_row(other, base)
        if row:
            rows.append({"arm": arm, "reference": reference, "checkpoint": checkpoint, **row})
    return rows


def tta_gain(results: Sequence[dict]) -> list[dict]:
    """Per arm, the final checkpoint with flip TTA minus without, on the same (seed, case) pairs."""
    return evaluation_gain(results, TTA_KIND, "final")


def postprocessing_choice(results: Sequence[dict], kinds: Sequence[str]) -> list[dict]:
    """Per arm and post-processed evaluation in ``kinds``: largest component minus none on the same cases, and
    ``chosen`` as nnU-Net decides from its cross-validation (the mean Dice of the held-out cases rises)."""
    rows = []
    chosen_on = _choice_cases(results)
    for kind, reference in POSTPROCESSED_KINDS.items():
        if kind in kinds and reference in kinds:
            rows += [{**row, "chosen": row["dice_diff"] > 0, "chosen_on": chosen_on}
                     for row in evaluation_gain(results, kind, reference)]
    return rows


def _choice_cases(results: Sequence[dict]) -> str:
    """``"CV"`` when every run was scored on its held-out fold (nnU-Net's setting); otherwise the split the runs
    were scored on, which is then also the split the choice was made on (an optimistic choice)."""
    splits = sorted({r["eval"]["final"]["split"] for r in results if "final" in r["eval"]})
    if splits and all(s.startswith("heldout") for s in splits):
        return "CV"
    return "/".join(splits) or "unknown"


def _paired_row(other: dict[tuple[int, str], dict], reference: dict[tuple[int, str], dict]) -> dict:
    """``other − reference`` per metric on their common (seed, case) keys, each case averaged over its seeds:
    mean difference, bootstrap CI, Wilcoxon p, wins / losses (empty when they share no case)."""
    common = sorted(set(other) & set(reference))
    if not common:
        return {}
    row: dict = {"seeds": len({seed for seed, _ in common})}
    for metric in METRICS:
        per_case: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for key in common:
            per_case[key[1]].append((other[key][metric], reference[key][metric]))
        diff = paired_difference(np.array([np.mean([a for a, _ in v]) for v in per_case.values()]),
                                 np.array([np.mean([b for _, b in v]) for v in per_case.values()]))
        row.update({"cases": diff.n, f"{metric}_diff": diff.mean, f"{metric}_ci_low": diff.ci_low,
                    f"{metric}_ci_high": diff.ci_high, f"{metric}_p_wilcoxon": diff.p_wilcoxon,
                    f"{metric}_wins": diff.wins, f"{metric}_losses": diff.losses})
    return row


def evaluation_kinds(results: Sequence[dict]) -> tuple[str, ...]:
    """The evaluations the tables show: ``final``, those of ``OPTIONAL_KINDS`` every run has, ``best``."""
    optional = [kind for kind in OPTIONAL_KINDS if results and all(kind in r["eval"] for r in results)]
    return ("final", *optional, "best")


def seed_table(results: Sequence[dict], checkpoint: str = "final", reference: str = REFERENCE_ARM) -> list[dict]:
    """Per arm and per arm − ``reference``: the mean Dice over each seed's cases (``seed_<n>``, with that seed's
    fold count in ``folds_<n>``), then ``mean`` / ``std`` over the seeds that finished every fold of the study
    (``complete_seeds``). Empty for a study of one seed. The runs are paired (:func:`complete_groups`), so a
    difference per seed is the difference of the arms' means over the same cases."""
    scores = per_case_scores(results, checkpoint)
    seeds = sorted({int(r["seed"]) for r in results})
    if len(seeds) < 2:
        return []
    folds = {seed: {int(r["fold"]) for r in results if int(r["seed"]) == seed} for seed in seeds}
    complete = [seed for seed in seeds if len(folds[seed]) == max(len(f) for f in folds.values())]

    def seed_mean(arm: str, seed: int) -> float:
        return float(np.mean([v["dice"] for (s, _), v in scores[arm].items() if s == seed]))

    rows = []
    for arm in sorted(scores, key=_arm_order):
        rows.append({"row": arm, "values": {seed: seed_mean(arm, seed) for seed in seeds}})
    for arm in sorted(scores, key=_arm_order):
        if arm != reference and reference in scores:
            rows.append({"row": f"{arm} − {reference}",
                         "values": {seed: seed_mean(arm, seed) - seed_mean(reference, seed) for seed in seeds}})
    out = []
    for row in rows:
        kept = [row["values"][seed] for seed in complete]
        out.append({"row": row["row"], "checkpoint": checkpoint,
                    **{f"seed_{seed}": row["values"][seed] for seed in seeds},
                    **{f"folds_{seed}": len(folds[seed]) for seed in seeds},
                    "complete_seeds": len(complete), "mean": float(np.mean(kept)),
                    "std": float(np.std(kept, ddof=1)) if len(kept) > 1 else math.nan})
    return out


def _seed_lines(rows: Sequence[dict]) -> list[str]:
    """Markdown lines of :func:`seed_table` (a seed with fewer folds is marked and left out of the mean)."""
    if not rows:
        return []
    seeds = [int(key.removeprefix("seed_")) for key in rows[0] if key.startswith("seed_")]
    most = max(rows[0][f"folds_{seed}"] for seed in seeds)
    heads = [f"seed {seed}" + ("" if rows[0][f"folds_{seed}"] == most else f" ({rows[0][f'folds_{seed}']} of {most} folds)")
             for seed in seeds]
    lines = ["", f"| Dice per seed | checkpoint | {' | '.join(heads)} | mean ± std over {rows[0]['complete_seeds']} "
             f"complete seed{'s' if rows[0]['complete_seeds'] > 1 else ''} |", "|---|---|" + "---:|" * (len(seeds) + 1)]
    for r in rows:
        sign = "+" if "−" in r["row"] else ""
        cells = [f"{r[f'seed_{seed}']:{sign}.4f}" for seed in seeds]
        lines.append(f"| {r['row']} | {_label(r['checkpoint'])} | {' | '.join(cells)} | {r['mean']:{sign}.4f} ± {_fmt(r['std'])} |")
    return lines


def robustness_curves(results: Sequence[dict]) -> dict[str, list[tuple[float, float, float]]]:
    """``{arm: [(hidden fraction, mean Dice, std over runs), ...]}`` from each run's robustness table."""
    collected: dict[str, dict[float, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if not result.get("robustness_csv") or not Path(result["robustness_csv"]).is_file():
            continue
        for row in _read_csv(result["robustness_csv"]):
            collected[result["arm"]][float(row["ratio"])].append((float(row["hidden_fraction"]), float(row["dice_mean"])))
    return {arm: [(float(np.mean([h for h, _ in v])), float(np.mean([d for _, d in v])), float(np.std([d for _, d in v])))
                  for _, v in sorted(by_ratio.items())] for arm, by_ratio in sorted(collected.items(), key=lambda kv: _arm_order(kv[0]))}


def _arm_order(arm: str) -> tuple[int, str]:
    order = ["baseline", "context", "masksup", "baseline-2x"]
    return (order.index(arm) if arm in order else len(order), arm)


def _fmt(value: float, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def format_p(value: float | None) -> str:
    """A p-value with 3 decimals; below 0.001 as ``< 0.001`` (never a misleading ``0.000``)."""
    if value is not None and not math.isnan(value) and value < 0.001:
        return "< 0.001"
    return _fmt(value, 3)


def markdown(summary: Sequence[dict], paired: Sequence[dict], curves: dict, title: str = "",
             tta: Sequence[dict] = (), postprocessing: Sequence[dict] = (), variants: Sequence[dict] = (),
             seeds: Sequence[dict] = ()) -> str:
    """The tables of a study as Markdown (what ``docs/results.md`` quotes)."""
    lines = [f"### {title}" if title else "", "", "| arm | checkpoint | runs | cases | Dice (mean ± std over runs) | Dice 95 % CI | IoU (mean ± std) | IoU 95 % CI |",
             "|---|---|---:|---:|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['arm']} | {_label(r['checkpoint'])} | {r['runs']} | {r['cases']} | {_fmt(r['dice_mean'])} ± {_fmt(r['dice_run_std'])} | "
                     f"[{_fmt(r['dice_ci_low'])}, {_fmt(r['dice_ci_high'])}] | {_fmt(r['iou_mean'])} ± {_fmt(r['iou_run_std'])} | "
                     f"[{_fmt(r['iou_ci_low'])}, {_fmt(r['iou_ci_high'])}] |")
    lines += _paired_table(paired, "arm − baseline")
    lines += _seed_lines(seeds)
    lines += _paired_table([{**r, "arm": f"{r['arm']} − {r['reference']}"} for r in variants], "defined arm − arm of its method")
    lines += _paired_table(tta, "arm: TTA − no TTA")
    lines += _paired_table(postprocessing, "arm: largest component − none", chosen=True)
    if curves:
        ratios = sorted({round(h, 2) for points in curves.values() for h, _, _ in points})
        lines += ["", "| arm | " + " | ".join(f"Dice, {h:.0%} hidden" for h in ratios) + " | kept at ~50 % |",
                  "|---|" + "---:|" * (len(ratios) + 1)]
        for arm, points in curves.items():
            clean = points[0][1] if points else math.nan
            half = min(points, key=lambda p: abs(p[0] - 0.5))[1] if points else math.nan
            cells = {round(h, 2): d for h, d, _ in points}
            lines.append(f"| {arm} | " + " | ".join(_fmt(cells.get(h, math.nan), 3) for h in ratios) + f" | {_fmt(half / clean if clean else math.nan, 2)}× |")
    return "\n".join(lines).strip() + "\n"


def _label(kind: str) -> str:
    return LABELS.get(kind, kind)


def _paired_table(rows: Sequence[dict], header: str, chosen: bool = False) -> list[str]:
    """Markdown lines of paired differences (rows of :func:`_paired_row` with arm and checkpoint; with ``chosen``,
    a last column from each row's ``chosen``); none for no rows."""
    if not rows:
        return []
    label = "chosen by CV" if not chosen or rows[0].get("chosen_on", "CV") == "CV" else "chosen on these cases"
    extra = (f" {label} |", "---|") if chosen else ("", "")
    lines = ["", f"| {header} | checkpoint | seeds | cases | ΔDice [95 % CI] | p (Wilcoxon) | ΔIoU [95 % CI] | p (Wilcoxon) | wins/losses (IoU) |{extra[0]}",
             f"|---|---|---:|---:|---|---:|---|---:|---|{extra[1]}"]
    for r in rows:
        lines.append(f"| {r['arm']} | {_label(r['checkpoint'])} | {r['seeds']} | {r['cases']} | {_fmt(r['dice_diff'])} [{_fmt(r['dice_ci_low'])}, {_fmt(r['dice_ci_high'])}] | "
                     f"{format_p(r['dice_p_wilcoxon'])} | {_fmt(r['iou_diff'])} [{_fmt(r['iou_ci_low'])}, {_fmt(r['iou_ci_high'])}] | "
                     f"{format_p(r['iou_p_wilcoxon'])} | {r['iou_wins']}/{r['iou_losses']} |"
                     + ((" yes |" if r["chosen"] else " no |") if chosen else ""))
    return lines


def bar_chart(summary: Sequence[dict], path: Path, title: str = "") -> Path:
    """Mean Dice and IoU per arm (final checkpoint) with bootstrap 95 % CIs."""
    rows = [r for r in summary if r["checkpoint"] == "final"] or list(summary)
    colours = style.series_colours(r["arm"] for r in rows)
    fig, axes = style.pyplot().subplots(1, 2, figsize=(4 + 1.2 * len(rows), 3.6))
    for ax, metric in zip(axes, METRICS):
        means = [r[f"{metric}_mean"] for r in rows]
        errors = np.array([[m - r[f"{metric}_ci_low"], r[f"{metric}_ci_high"] - m] for m, r in zip(means, rows)]).T
        ax.bar(range(len(rows)), means, yerr=np.nan_to_num(errors), capsize=4,
               color=[colours[r["arm"]] for r in rows])
        ax.set_xticks(range(len(rows)), [r["arm"] for r in rows], rotation=20)
        ax.set_ylim(*_y_range(rows, metric))
        ax.set_ylabel(f"{metric.upper() if metric == 'iou' else 'Dice'} (held-out, native resolution)")
        ax.grid(axis="y", alpha=style.GRID_ALPHA)
    fig.suptitle(title or "mean with bootstrap 95 % CI over cases", fontsize=style.FONT_TITLE)
    fig.tight_layout()
    return style.save_figure(fig, path)


def _y_range(rows: Sequence[dict], metric: str) -> tuple[float, float]:
    """Axis limits of a bar chart that show every mean and its whole CI, with a margin, within [0, 1]."""
    means = [r[f"{metric}_mean"] for r in rows]
    lows = [r[f"{metric}_ci_low"] for r in rows if not math.isnan(r[f"{metric}_ci_low"])]
    highs = [r[f"{metric}_ci_high"] for r in rows if not math.isnan(r[f"{metric}_ci_high"])]
    return max(0.0, min(lows, default=min(means)) - 0.05), min(1.0, max(highs, default=max(means)) + 0.02)


def robustness_chart(curves: dict, path: Path, title: str = "") -> Path:
    """Dice versus the share of the input hidden (free-form masks), one line per arm (± std over runs)."""
    colours = style.series_colours(curves)
    fig, ax = style.pyplot().subplots(figsize=(5.2, 3.8))
    for arm, points in curves.items():
        h, d, s = (np.array(v) for v in zip(*points))
        ax.errorbar(h * 100, d, yerr=s, marker="o", capsize=3, label=arm, color=colours[arm])
    ax.set_xlabel("input hidden (%)")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1)
    ax.grid(alpha=style.GRID_ALPHA)
    ax.legend()
    ax.set_title(title or "robustness to occlusion (held-out cases)", fontsize=style.FONT_TITLE)
    fig.tight_layout()
    return style.save_figure(fig, path)


def side_by_side(results: Sequence[dict], path: Path, arms: Sequence[str] = ("baseline", "masksup"), n_cases: int = 4,
                 checkpoint: str = "final") -> Path | None:
    """Image | truth | each arm's mask on the same held-out cases (seed of the first common run): the cases
    where the second arm gains most and loses most against the first. ``None`` when the arms share no case."""
    from ..inference.predictor import Predictor
    from ..io import read_case, read_label
    from ..io.overlay import display_rgb

    results = [r for r in results if Path(r["checkpoints"][checkpoint]).is_file()]  # committed studies keep no weights
    scores = per_case_scores(results, checkpoint)
    if not all(a in scores for a in arms):
        return None
    common = sorted(set.intersection(*(set(scores[a]) for a in arms)))
    if not common:
        return None
    seed = common[0][0]
    keys = [k for k in common if k[0] == seed]
    keys.sort(key=lambda k: scores[arms[-1]][k]["dice"] - scores[arms[0]][k]["dice"])
    chosen = list(dict.fromkeys(keys[-(n_cases // 2 or 1):][::-1] + keys[: n_cases - n_cases // 2]))[:n_cases]
    by_run = {(r["arm"], int(r["seed"]), int(r["fold"])): r for r in results}
    fig, axes = style.pyplot().subplots(len(chosen), 2 + len(arms), figsize=(2.2 * (2 + len(arms)), 1.8 * len(chosen)), squeeze=False)
    predictors: dict[str, Predictor] = {}

    def predictor(run: dict) -> Predictor:
        """The run's predictor (as ``infer`` builds it, on the CPU), loaded once."""
        if run["key"] not in predictors:
            predictors[run["key"]] = Predictor.from_checkpoint(run["checkpoints"][checkpoint], device="cpu")
        return predictors[run["key"]]

    for row, key in enumerate(chosen):
        fold = scores[arms[0]][key]["fold"]
        item_csv = _read_csv(by_run[(arms[0], seed, fold)]["eval"][checkpoint]["per_case_csv"])
        item = next(r for r in item_csv if r["case"] == key[1])
        case = read_case(item["image"])
        rgb = display_rgb(case.image)
        panels = [("image", None), ("truth", None)] + [(arm, None) for arm in arms]
        for col, (name, _) in enumerate(panels):
            ax = axes[row][col]
            if name == "image":
                style.draw_masks(ax, rgb, [])
                ax.set_title(key[1], fontsize=style.FONT_SMALL)
                continue
            if name == "truth":
                record = predictor(by_run[(arms[0], seed, fold)]).record
                mask = read_label(item["label"], record.label_threshold)
                title, colour = "truth", style.TRUTH
            else:
                mask = predictor(by_run[(name, seed, fold)]).segment(case.image, case.stored_bits)[0]
                title, colour = f"{name}: Dice {scores[name][key]['dice']:.3f}", style.PREDICTION
            shown = np.asarray(mask, dtype=bool).T
            style.draw_masks(ax, style.tint(rgb / 255.0, shown, colour), [(shown, colour)])
            ax.set_title(title, fontsize=style.FONT_SMALL)
    fig.suptitle(f"held-out cases where {arms[-1]} gains most (top) and loses most (bottom) against {arms[0]}",
                 fontsize=style.FONT_LABEL)
    fig.tight_layout()
    style.colour_key(fig, [style.TRUTH_KEY, style.PREDICTION_KEY])
    return style.save_figure(fig, path)


def complete_groups(results: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """The runs of the (seed, fold) pairs that every arm of the study has finished, and the keys of the others:
    tables then compare arms on the same cases."""
    arms = {r["arm"] for r in results}
    by_group: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for r in results:
        by_group[(int(r["seed"]), int(r["fold"]))].append(r)
    keep = [r for runs in by_group.values() if {r["arm"] for r in runs} == arms for r in runs]
    return keep, [r["key"] for r in results if r not in keep]


def _postprocessing_sentence(rows: Sequence[dict]) -> str:
    """One sentence of what the cross-validation chooses per arm (nnU-Net's rule), from the rows without TTA."""
    plain = [r for r in rows if r["reference"] == "final"] or list(rows)
    chosen = [r["arm"] for r in plain if r["chosen"]]
    others = [r["arm"] for r in plain if not r["chosen"]]
    parts = ([f"keep only the largest component for {', '.join(chosen)} (`infer --keep_largest`)"] if chosen else []) + (
        [f"no post-processing for {', '.join(others)}"] if others else [])
    chosen_on = plain[0].get("chosen_on", "CV") if plain else "CV"
    if chosen_on == "CV":
        return ("Post-processing chosen by the held-out cases (nnU-Net's rule: keep it where the mean Dice rises): "
                + "; ".join(parts) + ".\n")
    return (f"Post-processing chosen on the same {chosen_on} cases it is scored on (nnU-Net's rule: keep it where the "
            "mean Dice rises): " + "; ".join(parts) + ". With no cross-validation this choice is optimistic: the "
            "post-processed scores are selected on the cases they report, so quote the plain ones, or choose on CV "
            "folds of the training data.\n")


def write_study_report(results: Sequence[dict], out_dir: str | Path, title: str = "", figures: bool = True
                       ) -> dict[str, Path]:
    """All tables and figures of a study under ``out_dir``; returns their paths (``summary.md`` first). Without
    ``figures`` (the interim report ``compare`` writes as runs finish) only the tables are written, and
    ``summary.md`` says that the figures are older."""
    from ..io.atomic import write_csv, write_json, write_text

    out_dir = Path(out_dir)
    results, left_out = complete_groups(results)
    kinds = evaluation_kinds(results)
    summary = [row for kind in kinds for row in arm_summary(results, kind)]
    paired = [row for kind in kinds for row in paired_against_reference(results, kind)]
    variants = [row for kind in kinds for row in variants_against_their_method(results, kind)]
    tta = tta_gain(results) if TTA_KIND in kinds else []
    postprocessing = postprocessing_choice(results, kinds)
    seeds = seed_table(results)
    curves = robustness_curves(results)
    text = markdown(summary, paired, curves, title, tta, postprocessing, variants, seeds)
    if postprocessing:
        text += "\n" + _postprocessing_sentence(postprocessing)
    if left_out:
        text += (f"\nLeft out until every arm has finished their seed and fold (comparisons stay paired): "
                 f"{', '.join(sorted(left_out))}.\n")
    for kind, option in ((TTA_KIND, "--tta"), ("final-largest", "--keep_largest")):
        lacking = sorted(r["key"] for r in results if kind not in r["eval"])
        if kind not in kinds and len(lacking) < len(results):
            text += (f"\n{_label(kind)} is shown once every compared run has it (`compare {option}`); "
                     f"still without: {', '.join(lacking)}.\n")
    from .quality import quality_section  # compare --uncertainty: risk-coverage of the quality scores per arm

    quality_text, quality_paths = quality_section(results, out_dir, figures)
    text += quality_text
    if not figures:
        text += (f"\nInterim report of the {len(results)} compared runs finished so far, written while the study runs; "
                 "the figures in this folder are redrawn when `compare` ends.\n")
    paths = {"summary_md": write_text(out_dir / "summary.md", text), **quality_paths}
    if summary:
        paths["summary_csv"] = write_csv(out_dir / "summary.csv", summary, list(summary[0]))
    if summary and figures:
        paths["bars"] = bar_chart(summary, out_dir / "bars.png", title)
    if paired:
        paths["paired_csv"] = write_csv(out_dir / "paired.csv", paired, list(paired[0]))
    if seeds:
        paths["seeds_csv"] = write_csv(out_dir / "seeds.csv", seeds, list(seeds[0]))
    if variants:
        paths["variants_csv"] = write_csv(out_dir / "variants.csv", variants, list(variants[0]))
    if tta:
        paths["tta_csv"] = write_csv(out_dir / "tta.csv", tta, list(tta[0]))
    if postprocessing:
        paths["postprocessing_csv"] = write_csv(out_dir / "postprocessing.csv", postprocessing, list(postprocessing[0]))
        paths["postprocessing_json"] = write_json(out_dir / "postprocessing.json", postprocessing_record(postprocessing))
    if curves and figures:
        paths["robustness"] = robustness_chart(curves, out_dir / "robustness.png", title)
    cases = side_by_side(results, out_dir / "cases.png") if figures else None
    if cases is not None:
        paths["cases"] = cases
    return paths
