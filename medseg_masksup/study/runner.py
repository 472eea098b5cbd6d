"""Running a study resumably: each run trains (the bundle, in its own process), is evaluated through the
``evaluate`` path on the held-out split (best and final checkpoint) and gets a robustness curve.

Layout of a study folder::

    study.json                    the plan (settings every run shares)
    mlflow.db                     one MLflow store: one experiment, runs tagged study/arm/method/seed/fold
    runs/<arm>-s<seed>-f<fold>/
        overrides.json            the bundle overrides of this run
        train.log                 the training output
        train/                    the training run folder (model.pt, last.pt, figures ...)
        eval-best/ eval-final/    per_case.csv + summary.json of ``evaluate``
        robustness/               robustness.csv of the final checkpoint
        result.json               written last, atomically: the run is done

A run whose ``result.json`` exists is skipped; an interrupted training is resumed from its ``last.pt``;
a finished training whose evaluation was interrupted is only evaluated. So a study stopped by a crash,
Ctrl-C or the end of a session carries on where it was when the same command runs again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..bundle_files import bundle_file
from ..errors import UserError
from .plan import RunSpec, StudyPlan, check_resumable

PLAN_FILE = "study.json"
RESULT_FILE = "result.json"
CHECKPOINTS = {"best": "model.pt", "final": "last.pt"}


def tracking_uri(study_dir: Path) -> str:
    from ..training.tracking import sqlite_uri

    return sqlite_uri(str(study_dir / "mlflow.db"))


def run_dir(study_dir: Path, spec: RunSpec) -> Path:
    return study_dir / "runs" / spec.key


def is_done(study_dir: Path, spec: RunSpec) -> bool:
    return (run_dir(study_dir, spec) / RESULT_FILE).is_file()


def run_tags(plan: StudyPlan, spec: RunSpec) -> dict[str, str]:
    """MLflow tags that let the UI group a study's runs."""
    return {"study": plan.name, "arm": spec.arm.name, "method": spec.arm.method, "seed": str(spec.seed),
            "fold": str(spec.fold), "epochs": str(spec.epochs)}


def _finished_training(train_dir: Path) -> Path | None:
    found = sorted(p.parent for p in train_dir.glob("*/*/*/summary.json") if (p.parent / "model.pt").is_file())
    return found[-1] if found else None


def _unfinished_training(train_dir: Path) -> Path | None:
    found = sorted(p.parent for p in train_dir.glob("*/*/*/last.pt") if not (p.parent / "summary.json").exists())
    return found[-1] if found else None


def train(plan: StudyPlan, spec: RunSpec, study_dir: Path) -> Path:
    """Train one run with the bundle in a child process (resuming its ``last.pt`` if there is one); the run folder."""
    folder = run_dir(study_dir, spec)
    train_dir = folder / "train"
    done = _finished_training(train_dir)
    if done is not None:
        return done
    resume = _unfinished_training(train_dir)
    overrides = {**plan.overrides, "method": spec.arm.method, "epochs": spec.epochs, "seed": spec.seed,
                 "val_fold": spec.fold, "datalist": str(Path(plan.datalist).resolve()), "output_dir": str(train_dir),
                 "tracking_uri": tracking_uri(study_dir), "run_name": spec.key, "run_tags": run_tags(plan, spec),
                 "resume": str(resume) if resume else ""}
    from ..io.atomic import write_json

    write_json(folder / "overrides.json", overrides)
    files = [str(bundle_file("train.json")), *(str(Path(c).resolve()) for c in plan.config_files), str(folder / "overrides.json")]
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", repr(files)]
    with open(folder / "train.log", "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    finished = _finished_training(train_dir)
    if code != 0 or finished is None:
        raise UserError(f"training {spec.key} failed (exit status {code}); see {folder / 'train.log'}")
    return finished


def evaluate(plan: StudyPlan, spec: RunSpec, study_dir: Path, training_dir: Path) -> dict:
    """``evaluate`` on the held-out split for the best and the final checkpoint, and the final one's robustness curve."""
    from ..inference.evaluation import evaluate_checkpoint
    from ..inference.robustness import run_robustness

    folder, uri, tags = run_dir(study_dir, spec), tracking_uri(study_dir), run_tags(plan, spec)
    out: dict = {"checkpoints": {}, "eval": {}}
    for which, name in CHECKPOINTS.items():
        ckpt = training_dir / name
        report = evaluate_checkpoint(ckpt, plan.datalist, folder / f"eval-{which}", split=plan.eval_split,
                                     tracking_uri=uri, run_name=f"evaluate-{spec.key}-{which}", progress=False,
                                     verbose=False, tags={**tags, "checkpoint": which}, device="cpu")
        out["checkpoints"][which] = _relative(ckpt, study_dir)
        out["eval"][which] = {"split": report.split, "per_case_csv": _relative(report.per_case_csv, study_dir),
                              "metrics": report.summary}
    robust = run_robustness(training_dir / CHECKPOINTS["final"], plan.datalist, folder / "robustness",
                            ratios=plan.robustness_ratios, split=plan.eval_split, tracking_uri=uri,
                            run_name=f"robustness-{spec.key}", progress=False, verbose=False, tags=tags, device="cpu")
    out["robustness_csv"] = _relative(robust.table, study_dir)
    return out


def _relative(path: Path, study_dir: Path) -> str:
    """Paths in ``result.json`` are relative to the study folder, so a study folder can move (or be committed)."""
    return os.path.relpath(Path(path).resolve(), Path(study_dir).resolve())


def _absolute(result: dict, study_dir: Path) -> dict:
    """``result`` with its study-relative paths made absolute."""
    base = Path(study_dir)
    result["checkpoints"] = {k: str(base / v) for k, v in result["checkpoints"].items()}
    for which in result["eval"].values():
        which["per_case_csv"] = str(base / which["per_case_csv"])
    if result.get("robustness_csv"):
        result["robustness_csv"] = str(base / result["robustness_csv"])
    return result


def run_one(plan: StudyPlan, spec: RunSpec, study_dir: Path) -> dict:
    """Train, evaluate and record one run (``result.json`` last, atomically)."""
    from ..io.atomic import write_json

    folder = run_dir(study_dir, spec)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    training_dir = train(plan, spec, study_dir)
    trained = time.perf_counter()
    summary = json.loads((training_dir / "summary.json").read_text())
    result = {"key": spec.key, "arm": spec.arm.name, "method": spec.arm.method, "seed": spec.seed, "fold": spec.fold,
              "epochs": spec.epochs, "training_dir": _relative(training_dir, study_dir), "best_val_dice": summary.get("best_val_dice"),
              "best_epoch": summary.get("best_epoch"), "mlflow_run_id": summary.get("mlflow_run_id"),
              **evaluate(plan, spec, study_dir, training_dir)}
    result["seconds"] = {"this_session_training": round(trained - started, 1),
                         "evaluation": round(time.perf_counter() - trained, 1)}
    write_json(folder / RESULT_FILE, result)
    return result


def load_results(study_dir: Path) -> list[dict]:
    """Every finished run's ``result.json`` (paths made absolute)."""
    return [_absolute(json.loads(p.read_text()), study_dir) for p in sorted((Path(study_dir) / "runs").glob(f"*/{RESULT_FILE}"))]


def prepare_study(plan: StudyPlan, study_dir: Path) -> StudyPlan:
    """Create the study folder (or check that it holds the same study) and its MLflow store."""
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / PLAN_FILE
    if path.is_file():
        saved = StudyPlan.load(path)
        check_resumable(saved, plan, path)
        plan.arms = list(dict.fromkeys(saved.arms + plan.arms))
        plan.seeds = list(dict.fromkeys(saved.seeds + plan.seeds))
        plan.folds = list(dict.fromkeys(saved.folds + plan.folds))
    plan.save(path)
    from ..training.store import ensure_store, store_lock

    with store_lock(tracking_uri(study_dir)):  # create the store once, before any run
        ensure_store(tracking_uri(study_dir))
    return plan


def run_study(plan: StudyPlan, study_dir: str | Path, jobs: int = 1, log=print) -> list[dict]:
    """Run every unfinished run of ``plan`` (``jobs`` at a time, each in its own process); returns all results.

    A failed run is reported and the others go on; the study can be re-run to retry it.
    """
    study_dir = Path(study_dir)
    plan = prepare_study(plan, study_dir)
    specs = list(plan.runs())
    pending = [s for s in specs if not is_done(study_dir, s)]
    log(f"study {plan.name}: {len(specs)} runs, {len(specs) - len(pending)} already done, {len(pending)} to run "
        f"({jobs} at a time); folder {study_dir}")
    env = {**os.environ}
    if jobs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")
    failures = []

    def launch(spec: RunSpec) -> None:
        started = time.perf_counter()
        log(f"  start {spec.key} ({spec.epochs} epochs)")
        command = [sys.executable, "-m", "medseg_masksup.study.runner", str(study_dir), spec.key]
        code = subprocess.call(command, env=env)
        minutes = (time.perf_counter() - started) / 60
        if code != 0 or not is_done(study_dir, spec):
            failures.append(spec.key)
            log(f"  FAILED {spec.key} after {minutes:.1f} min (see {run_dir(study_dir, spec) / 'train.log'})")
            return
        result = json.loads((run_dir(study_dir, spec) / RESULT_FILE).read_text())
        final = result["eval"]["final"]["metrics"]["dice"]["mean"]
        log(f"  done  {spec.key} in {minutes:.1f} min: final-checkpoint Dice {final:.4f} "
            f"(best val Dice {result['best_val_dice']:.4f} at epoch {result['best_epoch']})")

    with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        list(pool.map(launch, pending))
    if failures:
        log(f"{len(failures)} run(s) failed: {', '.join(failures)}; run the same command again to retry them")
    return load_results(study_dir)


def _main(argv: list[str]) -> int:
    """``python -m medseg_masksup.study.runner <study_dir> <run key>``: one run, in its own process."""
    study_dir, key = Path(argv[0]), argv[1]
    plan = StudyPlan.load(study_dir / PLAN_FILE)
    spec = next((s for s in plan.runs() if s.key == key), None)
    if spec is None:
        print(f"error: {key} is not a run of {study_dir / PLAN_FILE}", file=sys.stderr)
        return 2
    try:
        run_one(plan, spec, study_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
