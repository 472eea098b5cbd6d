"""The study report's quality section (``compare --uncertainty``): each arm's candidate quality scores judged by
risk–coverage on its held-out cases, pooled over the folds.

Every run's ``final-uncertainty`` evaluation holds the per-case scores beside the Dice (``evaluate
--uncertainty``). The held-out folds of one seed split the cases between them, so pooling an arm's runs of one
seed gives every case once: one candidate table per arm and seed (AURC, oracle, chance, gap closed, Spearman,
kept Dice at 90 % and 80 % coverage, worst-10 % precision; :mod:`medseg_masksup.quality.risk_coverage`) and one
risk–coverage figure. Where runs of a seed score the same cases (a fixed validation or test split scored by each
fold's model), each run is a pool of its own, so no case counts twice. The section is shown once every compared
run has the evaluation; before that, one line names the runs still without it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the evaluation that holds the quality scores (:data:`medseg_masksup.study.runner.EVALUATIONS`)
QUALITY_KIND = "final-uncertainty"
#: the report's table of every pool (the figures are ``risk_coverage-<pool>.png``)
TABLE_FILE = "risk_coverage.json"


@dataclass(frozen=True)
class Pool:
    """One arm's held-out cases of one seed (of one fold where folds share cases), with their score columns."""

    arm: str
    seed: int
    folds: tuple[int, ...]
    rows: tuple[dict, ...]
    scores: tuple[str, ...]
    passes: tuple[str, ...]
    split_by_fold: bool = False

    @property
    def name(self) -> str:
        """``<arm>-s<seed>`` (``-f<fold>`` for a pool of one fold among folds that share cases)."""
        return f"{self.arm}-s{self.seed}" + (f"-f{self.folds[0]}" if self.split_by_fold else "")

    @property
    def label(self) -> str:
        folds = ", ".join(map(str, self.folds))
        return f"{self.arm}, seed {self.seed}, fold{'s' if len(self.folds) > 1 else ''} {folds}"


def _read_rows(path: str | Path) -> tuple[list[dict], list[str]]:
    """The evaluated (``status`` ok) rows of a ``per_case.csv`` and its candidate score columns."""
    import csv

    from ..quality.settings import SCORES

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [row for row in reader if row.get("status") == "ok"]
        return rows, [name for name in SCORES if name in (reader.fieldnames or [])]


def _passes(per_case_csv: str | Path) -> str:
    """The passes of an evaluation in words (from its ``summary.json``), or ``""`` when it cannot be read."""
    from ..quality.settings import QualitySettings

    try:
        summary = json.loads((Path(per_case_csv).parent / "summary.json").read_text())
        return QualitySettings.from_dict(summary["uncertainty"]["passes"]).describe()
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def pools(results: Sequence[dict]) -> list[Pool]:
    """Each arm's ``final-uncertainty`` cases pooled over its folds, per seed (see the module doc)."""
    runs: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for result in results:
        if QUALITY_KIND in result["eval"]:
            runs[(result["arm"], int(result["seed"]))].append(result)
    out = []
    for (arm, seed), group in runs.items():
        read = [(int(r["fold"]), *_read_rows(r["eval"][QUALITY_KIND]["per_case_csv"]),
                 _passes(r["eval"][QUALITY_KIND]["per_case_csv"])) for r in sorted(group, key=lambda r: int(r["fold"]))]
        cases = [row["case"] for _, rows, _, _ in read for row in rows]
        shared = len(cases) != len(set(cases))
        parts = [[entry] for entry in read] if shared else [read]
        for part in parts:
            scores = [name for name in part[0][2] if all(name in entry[2] for entry in part)]
            out.append(Pool(arm, seed, tuple(fold for fold, *_ in part), tuple(row for _, rows, _, _ in part for row in rows),
                            tuple(scores), tuple(dict.fromkeys(p for *_, p in part if p)), split_by_fold=shared))
    from .plan import ARMS

    order = list(ARMS)  # the built-in arms in the report's order, then the others by name
    return sorted(out, key=lambda pool: (order.index(pool.arm) if pool.arm in order else len(order), pool.arm,
                                         pool.seed, pool.folds))


def pool_table(pool: Pool) -> dict[str, dict[str, Any]]:
    """The candidate table of ``pool`` (curves included), by score."""
    from ..quality.risk_coverage import candidate_table

    return candidate_table(pool.rows, pool.scores)


def _finite(value: Any) -> Any:
    """``None`` for NaN (strict JSON), the value otherwise."""
    return None if isinstance(value, float) and math.isnan(value) else value


def _cell(value: float, digits: int) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def markdown_lines(tables: Sequence[tuple[Pool, dict[str, dict[str, Any]]]]) -> list[str]:
    """The section's Markdown: what was pooled, how to read it, one row per pool and score (lowest AURC bold)."""
    from ..quality.risk_coverage import best_score

    passes = sorted({p for pool, _ in tables for p in pool.passes})
    lines = ["", f"Quality scores (`compare --uncertainty`, final checkpoint{'; passes: ' + ' / '.join(passes) if passes else ''}): "
             "risk–coverage on each arm's held-out cases, pooled over its folds per seed (every case once). AURC is lower "
             "for a better ranking, between the oracle (ranking by the true Dice) and chance (the mean risk); gap closed = "
             "(chance − AURC) / (chance − oracle); Dice@90 % / @80 %: mean Dice of the most trusted 90 % / 80 % of the "
             "cases; worst 10 %: share of the 10 % least trusted among the 10 % lowest Dice (chance ≈ 0.1). Lowest AURC "
             f"in bold; table in `{TABLE_FILE}`, curves in `risk_coverage-<arm>-s<seed>.png`.", "",
             "| arm | seed | folds | cases | score | AURC | oracle | chance | gap closed | Spearman | Dice@90 % | Dice@80 % | worst 10 % |",
             "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for pool, table in tables:
        best = best_score(table) if table else ""
        for name, r in table.items():
            shown = f"**{name}**" if name == best else name
            lines.append(f"| {pool.arm} | {pool.seed} | {' '.join(map(str, pool.folds))} | {r['n']} | {shown} | "
                         f"{_cell(r['aurc'], 4)} | {_cell(r['oracle'], 4)} | {_cell(r['chance'], 4)} | "
                         f"{_cell(r['gap_closed'], 2)} | {_cell(r['spearman'], 3)} | {_cell(r['kept_dice_90'], 4)} | "
                         f"{_cell(r['kept_dice_80'], 4)} | {_cell(r['worst_precision'], 2)} |")
    return lines


def quality_section(results: Sequence[dict], out_dir: str | Path, figures: bool = True) -> tuple[str, dict[str, Path]]:
    """The quality section of the study report: its Markdown, and the paths it wrote (``risk_coverage.json``; with
    ``figures``, one risk–coverage figure per pool). Nothing for a study without ``final-uncertainty``
    evaluations; only a line naming the runs still without one while some compared runs have it."""
    from ..io.atomic import write_json
    from ..quality.figure import plot_risk_coverage
    from ..quality.risk_coverage import TABLE_FIELDS, best_score

    lacking = sorted(r["key"] for r in results if QUALITY_KIND not in r["eval"])
    if len(lacking) == len(results):
        return "", {}
    if lacking:
        return (f"\nThe quality scores' risk–coverage is shown once every compared run has them (`compare "
                f"--uncertainty`); still without: {', '.join(lacking)}.\n"), {}
    out_dir = Path(out_dir)
    tables = [(pool, pool_table(pool)) for pool in pools(results) if pool.rows and pool.scores]
    if not tables:
        return "", {}
    record = {"evaluation": QUALITY_KIND, "pooled": "each arm's held-out cases over its folds, per seed",
              "pools": [{"arm": pool.arm, "seed": pool.seed, "folds": list(pool.folds), "cases": len(pool.rows),
                         "passes": list(pool.passes), "best": best_score(table),
                         "scores": {name: {"n": row["n"], **{k: _finite(row[k]) for k in TABLE_FIELDS}}
                                    for name, row in table.items()}}
                        for pool, table in tables]}
    paths = {"risk_coverage_json": write_json(out_dir / TABLE_FILE, record)}
    if figures:
        for pool, table in tables:
            paths[f"risk_coverage_{pool.name}"] = plot_risk_coverage(
                table, [float(row["dice"]) for row in pool.rows], out_dir / f"risk_coverage-{pool.name}.png",
                title=f"{pool.label}: risk–coverage over {len(pool.rows)} held-out cases (lower is better)")
    return "\n".join(markdown_lines(tables)) + "\n", paths
