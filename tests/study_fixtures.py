"""Shared helpers for the study tests: the tiny ``compare`` study (2 arms, 1 epoch, 32 px synthetic data),
trained once per test session; tests work on copies of it."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path


def tiny_study_args(data_dir: Path, study: Path) -> list[str]:
    """The ``compare`` arguments of the tiny study in ``study`` (its synthetic datalist is made in ``data_dir``)."""
    from medseg_masksup.data.synthetic import ensure_synthetic_dataset

    datalist = ensure_synthetic_dataset(data_dir, n_cases=10, size=32)
    return ["--datalist", str(datalist), "--output_dir", str(study), "--arms", "baseline", "masksup", "--epochs", "1",
            "--set", "img_size=[32,32]", "batch_size=4", "--name", "tiny"]


def copy_study(study: Path, args: list[str], target: Path) -> tuple[Path, list[str]]:
    """A copy of ``study`` at ``target`` and its ``compare`` arguments (``--output_dir`` pointing at the copy)."""
    shutil.copytree(study, target)
    return target, [str(target) if a == str(study) else a for a in args]


def fake_run(folder: Path, arm: str, evaluations: dict[str, list[float]], method: str | None = None,
             split: str = "heldout-fold0") -> dict:
    """A finished run's result (paths absolute, as load_results gives them) with per-case Dice per evaluation,
    scored on ``split`` (default: its CV fold); ``method`` defaults to the arm's name."""
    result = {"key": f"{arm}-s0-f0", "arm": arm, "method": method or arm, "seed": 0, "fold": 0, "eval": {},
              "checkpoints": {"best": str(folder / "none.pt"), "final": str(folder / "none.pt")}}
    for name, dice in evaluations.items():
        path = folder / f"{arm}-{name}.csv"
        rows = [{"case": f"c{i}", "status": "ok", "dice": d, "iou": d / (2 - d)} for i, d in enumerate(dice)]
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        mean = sum(dice) / len(dice)
        result["eval"][name] = {"split": split, "per_case_csv": str(path),
                                "metrics": {m: {"mean": mean} for m in ("dice", "iou")}}
    return result
