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


def run_fingerprints(study: Path) -> dict[str, tuple[str, int]]:
    """sha256 and modification time of every file of a study's runs but their result.json."""
    import hashlib

    return {str(p.relative_to(study)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted((study / "runs").rglob("*")) if p.is_file() and p.name != "result.json"}


def tagged_evaluations(study: Path, tag: str) -> list[str]:
    """The names of the study's MLflow runs tagged ``tag = 'true'`` (evaluations with TTA, quality scores ...)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], f"tags.{tag} = 'true'")
    return sorted(r.info.run_name for r in runs)


def check_evaluation_added(compare, study: Path, args: list[str], capsys, flag: str, evaluation: str) -> dict[str, dict]:
    """``compare <flag>`` on the finished tiny study adds the final checkpoint's ``evaluation`` to both runs without
    retraining: no file of the runs but the new ``eval-<evaluation>/`` is written or touched, and ``result.json``
    only gains that entry (its path relative to the study). Returns each run's ``result.json`` by run key."""
    import json

    keys = sorted(p.parent.name for p in (study / "runs").glob("*/result.json"))
    before = run_fingerprints(study)  # contents and mtimes
    results_before = {key: json.loads((study / "runs" / key / "result.json").read_text()) for key in keys}
    capsys.readouterr()
    assert compare([*args, flag]) == 0
    assert f"2 runs, 2 already done, 2 of them to complete ({evaluation} evaluation), 0 to run" in capsys.readouterr().out
    assert {k: v for k, v in run_fingerprints(study).items() if f"/eval-{evaluation}/" not in k} == before
    results = {}
    for key in keys:
        results[key] = json.loads((study / "runs" / key / "result.json").read_text())
        others = {k: v for k, v in results[key].items() if k != "seconds"}
        others["eval"] = {k: v for k, v in others["eval"].items() if k != evaluation}
        assert others == {k: v for k, v in results_before[key].items() if k != "seconds"}
        assert results[key]["eval"][evaluation]["per_case_csv"] == f"runs/{key}/eval-{evaluation}/per_case.csv"
    return results


def check_kept_once_asked(compare, study: Path, args: list[str], capsys, shown: str) -> None:
    """A study keeps an evaluation once asked: ``compare`` without its flag has nothing left to do and touches no
    file of the runs, and ``--report_only`` still reports it (``shown`` is in ``summary.md``)."""
    before = run_fingerprints(study)
    capsys.readouterr()
    assert compare(args) == 0
    assert "2 runs, 2 already done, 0 to run" in capsys.readouterr().out
    assert run_fingerprints(study) == before
    assert compare([*args, "--report_only"]) == 0
    assert shown in (study / "report" / "summary.md").read_text()


def check_missing_checkpoint(compare, study: Path, args: list[str], capfd, flag: str, evaluation: str) -> None:
    """``compare <flag>`` on a study whose baseline run lost its ``last.pt`` (a committed study keeps no weights)
    names the file in one line, fails that run (exit 1) and leaves its ``result.json`` as it was."""
    import json

    result_path = study / "runs" / "baseline-s0-f0" / "result.json"
    before = result_path.read_bytes()
    last = study / json.loads(before)["checkpoints"]["final"]
    last.unlink()
    capfd.readouterr()
    assert compare([*args, flag]) == 1
    captured = capfd.readouterr()
    assert [line for line in captured.err.splitlines() if str(last) in line] == [
        f"error: {last}: checkpoint of run baseline-s0-f0 not found; cannot run its {evaluation} evaluation"]
    assert "FAILED baseline-s0-f0" in captured.out
    assert result_path.read_bytes() == before
