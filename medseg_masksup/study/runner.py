"""Running a study resumably: each run trains (the bundle, in its own process), is evaluated through the
``evaluate`` path on the held-out split (best and final checkpoint) and gets a robustness curve.

Layout of a study folder::

    study.json                    the plan (settings every run shares)
    study.lock, study.lock.holder held by the compare that is running the study (one at a time; the holder file
                                  names it: pid, host, start time)
    mlflow.db                     one MLflow store: one experiment, runs tagged study/arm/method/seed/fold
    runs/<arm>-s<seed>-f<fold>/
        overrides.json            the bundle overrides of this run
        train.log                 the training output
        train/                    the training run folder (model.pt, last.pt, figures ...)
        eval-best/ eval-final/    per_case.csv + summary.json of ``evaluate``
        eval-final-tta/           the same for the final checkpoint with flip TTA (studies with ``tta``)
        eval-final-largest/       ... keeping only the largest connected component (studies with ``keep_largest``;
        eval-final-tta-largest/   with both: TTA, then the largest component)
        eval-final-uncertainty/   the final checkpoint with the candidate quality scores per case and their
                                  risk-coverage (studies with ``uncertainty``; the masks are those of eval-final)
        robustness/               robustness.csv of the final checkpoint
        result.json               written last, atomically: the run is done

A run whose ``result.json`` exists is skipped; an interrupted training is resumed from its ``last.pt``;
a finished training whose evaluation was interrupted is only evaluated. So a study stopped by a crash,
Ctrl-C, SIGTERM or the end of a session carries on where it was when the same command runs again. Each run
is a process group of its own: Ctrl-C or SIGTERM to ``compare`` stops every process of its runs (each
training saves its state and marks its MLflow run KILLED) before ``compare`` exits, so no training goes on
writing into the study folder unseen. A finished run
that lacks an evaluation the plan asks for (``final-tta`` once a study switches ``tta`` on, ``final-largest``
once it switches ``keep_largest`` on, ``final-uncertainty`` once it switches ``uncertainty`` on) gets only that
evaluation; its ``result.json`` is replaced when the evaluation is complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..bundle_files import bundle_file
from ..checkpoint import BEST, LAST, newest_finished_run, newest_unfinished_run, run_summary
from ..errors import UserError
from ..training.interrupt import exit_status, interrupt_on_signals
from .plan import RunSpec, StudyPlan, check_resumable

PLAN_FILE = "study.json"
#: held by the one ``compare`` that runs the study
LOCK_FILE = "study.lock"
RESULT_FILE = "result.json"
#: the run folder's checkpoint each evaluation scores (:mod:`medseg_masksup.checkpoint` names them)
CHECKPOINTS = {"best": BEST, "final": LAST}


@dataclass(frozen=True)
class Evaluation:
    """One scoring of a run on the held-out split: which checkpoint (a key of ``CHECKPOINTS``), with flip TTA or
    not, keeping only the largest connected component or not, with the candidate quality scores
    (``evaluate --uncertainty``, default pass settings) or not."""

    checkpoint: str
    tta: bool = False
    keep_largest: bool = False
    uncertainty: bool = False


#: every evaluation a run can get, by its name in ``result.json``'s ``"eval"`` (written to ``eval-<name>/``)
EVALUATIONS = {"best": Evaluation("best"), "final": Evaluation("final"), "final-tta": Evaluation("final", tta=True),
               "final-largest": Evaluation("final", keep_largest=True),
               "final-tta-largest": Evaluation("final", tta=True, keep_largest=True),
               "final-uncertainty": Evaluation("final", uncertainty=True)}


def planned_evaluations(plan: StudyPlan) -> list[str]:
    """The evaluations every run of ``plan`` gets (those with TTA, the largest component or the quality scores
    only when the study asks for them)."""
    return [name for name, evaluation in EVALUATIONS.items()
            if (plan.tta or not evaluation.tta) and (plan.keep_largest or not evaluation.keep_largest)
            and (plan.uncertainty or not evaluation.uncertainty)]


def tracking_uri(study_dir: Path) -> str:
    from ..tracking.store import sqlite_uri

    return sqlite_uri(str(study_dir / "mlflow.db"))


def run_dir(study_dir: Path, spec: RunSpec) -> Path:
    return study_dir / "runs" / spec.key


def is_done(study_dir: Path, spec: RunSpec) -> bool:
    """Whether the run is trained and evaluated (its ``result.json`` exists)."""
    return (run_dir(study_dir, spec) / RESULT_FILE).is_file()


def missing_evaluations(plan: StudyPlan, study_dir: Path, spec: RunSpec) -> list[str]:
    """The planned evaluations that the run's ``result.json`` lacks (all of them before the run is done)."""
    path = run_dir(study_dir, spec) / RESULT_FILE
    done = json.loads(path.read_text())["eval"] if path.is_file() else {}
    return [name for name in planned_evaluations(plan) if name not in done]


def run_tags(plan: StudyPlan, spec: RunSpec) -> dict[str, str]:
    """MLflow tags that let the UI group a study's runs."""
    return {"study": plan.name, "arm": spec.arm.name, "method": spec.arm.method, "seed": str(spec.seed),
            "fold": str(spec.fold), "epochs": str(spec.epochs)}


def train(plan: StudyPlan, spec: RunSpec, study_dir: Path, workers: int | None = None) -> Path:
    """Train one run with the bundle in a child process (resuming its ``last.pt`` if there is one); the run folder.
    ``workers``: data-loader processes for this invocation (``num_workers``; None: the bundle's or the plan's)."""
    folder = run_dir(study_dir, spec)
    train_dir = folder / "train"
    done = newest_finished_run(train_dir)
    if done is not None:
        return done
    resume = newest_unfinished_run(train_dir)
    if resume is None:
        close_stale_runs(plan, spec, study_dir)
    overrides = {**plan.overrides, **spec.arm.overrides, "method": spec.arm.method, "epochs": spec.epochs, "seed": spec.seed,
                 "val_fold": spec.fold, "datalist": str(Path(plan.datalist).resolve()), "output_dir": str(train_dir),
                 "tracking_uri": tracking_uri(study_dir), "run_name": spec.key, "run_tags": run_tags(plan, spec),
                 "resume": str(resume) if resume else ""}
    if workers is not None:
        overrides["num_workers"] = int(workers)
    from ..io.atomic import write_json

    write_json(folder / "overrides.json", overrides)
    files = [str(bundle_file("train.json")), *(str(Path(c).resolve()) for c in plan.config_files), str(folder / "overrides.json")]
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", repr(files)]
    with open(folder / "train.log", "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"})
    finished = newest_finished_run(train_dir)
    if code != 0 or finished is None:
        raise UserError(f"training {spec.key} failed (exit status {code}); see {folder / 'train.log'}")
    return finished


def close_stale_runs(plan: StudyPlan, spec: RunSpec, study_dir: Path) -> list[str]:
    """Mark KILLED the MLflow training runs of ``spec`` left RUNNING by a process that died before its first
    ``last.pt`` (SIGKILL, a power cut): such a run starts afresh, and its old run would stay RUNNING for ever.
    Under the study's lock no other process can be training it. Returns the run ids it closed."""
    if not (study_dir / "mlflow.db").is_file():
        return []
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(study_dir))
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    closed = []
    for run in client.search_runs(experiments, "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        if tags.get("mlflow.runName") == spec.key and tags.get("study") == plan.name and tags.get("kind") is None:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


def evaluate(plan: StudyPlan, spec: RunSpec, study_dir: Path, training_dir: Path, names: list[str]) -> dict[str, dict]:
    """``evaluate`` on the held-out split for each of the evaluations ``names``: ``{name: result.json entry}``."""
    from ..inference.evaluation import evaluate_checkpoint

    folder, uri, tags = run_dir(study_dir, spec), tracking_uri(study_dir), run_tags(plan, spec)
    out = {}
    for name in names:
        evaluation = EVALUATIONS[name]
        ckpt = training_dir / CHECKPOINTS[evaluation.checkpoint]
        if not ckpt.is_file():
            raise UserError(f"{ckpt}: checkpoint of run {spec.key} not found; cannot run its {name} evaluation")
        report = evaluate_checkpoint(ckpt, plan.datalist, folder / f"eval-{name}", split=plan.eval_split,
                                     tracking_uri=uri, run_name=f"evaluate-{spec.key}-{name}", progress=False,
                                     verbose=False, device="cpu", tta=evaluation.tta, keep_largest=evaluation.keep_largest,
                                     uncertainty=evaluation.uncertainty,
                                     tags={**tags, "checkpoint": evaluation.checkpoint, "tta": str(evaluation.tta).lower(),
                                           "keep_largest": str(evaluation.keep_largest).lower(),
                                           "uncertainty": str(evaluation.uncertainty).lower()})
        out[name] = {"split": report.split, "per_case_csv": _relative(report.per_case_csv, study_dir),
                     "metrics": report.summary}
    return out


def robustness(plan: StudyPlan, spec: RunSpec, study_dir: Path, training_dir: Path) -> str:
    """The final checkpoint's robustness curve on the held-out split; its table, relative to the study folder."""
    from ..inference.robustness import run_robustness

    robust = run_robustness(training_dir / CHECKPOINTS["final"], plan.datalist, run_dir(study_dir, spec) / "robustness",
                            ratios=plan.robustness_ratios, split=plan.eval_split, tracking_uri=tracking_uri(study_dir),
                            run_name=f"robustness-{spec.key}", progress=False, verbose=False,
                            tags=run_tags(plan, spec), device="cpu")
    return _relative(robust.table, study_dir)


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


def run_one(plan: StudyPlan, spec: RunSpec, study_dir: Path, workers: int | None = None) -> dict:
    """Train, evaluate and record one run (``result.json`` last, atomically); a finished run only gets the
    evaluations it lacks."""
    from ..io.atomic import write_json

    folder = run_dir(study_dir, spec)
    if is_done(study_dir, spec):
        return complete_run(plan, spec, study_dir)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    training_dir = train(plan, spec, study_dir, workers)
    trained = time.perf_counter()
    summary = run_summary(training_dir)
    result = {"key": spec.key, "arm": spec.arm.name, "method": spec.arm.method, "seed": spec.seed, "fold": spec.fold,
              "epochs": spec.epochs, "training_dir": _relative(training_dir, study_dir), "best_val_dice": summary.get("best_val_dice"),
              "best_epoch": summary.get("best_epoch"), "mlflow_run_id": summary.get("mlflow_run_id"),
              "checkpoints": {which: _relative(training_dir / name, study_dir) for which, name in CHECKPOINTS.items()},
              "eval": evaluate(plan, spec, study_dir, training_dir, planned_evaluations(plan)),
              "robustness_csv": robustness(plan, spec, study_dir, training_dir)}
    result["seconds"] = {"this_session_training": round(trained - started, 1),
                         "evaluation": round(time.perf_counter() - trained, 1)}
    write_json(folder / RESULT_FILE, result)
    return result


def complete_run(plan: StudyPlan, spec: RunSpec, study_dir: Path) -> dict:
    """Add the evaluations a finished run lacks to its ``result.json`` (replaced only once they are complete);
    nothing is trained and the other evaluations are left as they are."""
    from ..io.atomic import write_json

    path = run_dir(study_dir, spec) / RESULT_FILE
    result = json.loads(path.read_text())
    missing = missing_evaluations(plan, study_dir, spec)
    if not missing:
        return result
    started = time.perf_counter()
    result["eval"].update(evaluate(plan, spec, study_dir, Path(study_dir) / result["training_dir"], missing))
    seconds = result.setdefault("seconds", {})
    seconds["evaluation"] = round(seconds.get("evaluation", 0.0) + time.perf_counter() - started, 1)
    write_json(path, result)
    return result


def load_results(study_dir: Path) -> list[dict]:
    """Every finished run's ``result.json`` (paths made absolute)."""
    return [_absolute(json.loads(p.read_text()), study_dir) for p in sorted((Path(study_dir) / "runs").glob(f"*/{RESULT_FILE}"))]


def prepare_study(plan: StudyPlan, study_dir: Path, first: Sequence[str] = ()) -> StudyPlan:
    """Create the study folder (or check that it holds the same study) and its MLflow store. ``first`` (arms to
    train first) must name arms of the merged study; everything is checked before the plan is written."""
    study_dir.mkdir(parents=True, exist_ok=True)
    path = study_dir / PLAN_FILE
    if path.is_file():
        saved = StudyPlan.load(path)
        check_resumable(saved, plan, path)
        plan.custom_arms = {**saved.custom_arms, **plan.custom_arms}
        plan.arms = list(dict.fromkeys(saved.arms + plan.arms))
        plan.seeds = list(dict.fromkeys(saved.seeds + plan.seeds))
        plan.folds = list(dict.fromkeys(saved.folds + plan.folds))
        # once asked, every run of the study gets them (the report compares all runs)
        plan.tta, plan.keep_largest = plan.tta or saved.tta, plan.keep_largest or saved.keep_largest
        plan.uncertainty = plan.uncertainty or saved.uncertainty
    unknown = [name for name in first if name not in plan.arms]
    if unknown:
        raise UserError(f"--first {' '.join(unknown)}: not an arm of this study (its arms: {', '.join(plan.arms)})")
    plan.save(path)
    from ..tracking.store import ensure_store, store_lock

    with store_lock(tracking_uri(study_dir)):  # create the store once, before any run
        ensure_store(tracking_uri(study_dir))
    return plan


def run_study(plan: StudyPlan, study_dir: str | Path, jobs: int = 1, log=print, workers: int | None = None,
              first: Sequence[str] = (), on_result: Callable[[list[dict]], object] | None = None) -> list[dict]:
    """Run every unfinished run of ``plan`` (``jobs`` at a time, each in its own process); returns all results.
    ``workers`` (data-loader processes per run) is a choice of this invocation, like ``jobs``: not a study setting.
    So is ``first``: arms whose unfinished runs train before the others' (in study order otherwise), so that a
    study cut short holds complete comparisons of those arms. ``on_result(all results so far)`` is called after
    each run that finishes (one call at a time; an error in it is logged, and the study goes on).

    A failed run is reported and the others go on; the study can be re-run to retry it. One ``compare`` at a
    time per study folder: a second one is refused while the first holds ``study.lock`` (released when its
    process ends, however it ends), since both would train the same unfinished runs.
    """
    from ..io.folder_lock import hold_lock

    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    lock = study_dir / LOCK_FILE
    busy = (lambda holder: f"{study_dir} is in use by another 'compare' (it holds {lock}: {holder}); wait for it "
            "to finish or stop it, then run this command again")
    with hold_lock(lock, "'compare'", busy, note=lambda line: log(f"note: {line}"), place=f"study {study_dir}"):
        return _run_unfinished(plan, study_dir, jobs, log, workers, first, on_result)


def _run_unfinished(plan: StudyPlan, study_dir: Path, jobs: int, log, workers: int | None,
                    first: Sequence[str], on_result: Callable[[list[dict]], object] | None) -> list[dict]:
    """:func:`run_study` under the study's lock."""
    plan = prepare_study(plan, study_dir, first)
    specs = list(plan.runs())
    pending = sorted((s for s in specs if missing_evaluations(plan, study_dir, s)), key=lambda s: s.arm.name not in first)
    to_train = [s for s in pending if not is_done(study_dir, s)]
    to_complete = [s for s in pending if s not in to_train]
    completing = ""
    if to_complete:
        names = dict.fromkeys(name for s in to_complete for name in missing_evaluations(plan, study_dir, s))
        completing = f", {len(to_complete)} of them to complete ({', '.join(names)} evaluation)"
    log(f"study {plan.name}: {len(specs)} runs, {len(specs) - len(to_train)} already done{completing}, "
        f"{len(to_train)} to run ({jobs} at a time); folder {study_dir}")
    env = {**os.environ}
    if jobs > 1:
        env.setdefault("OMP_NUM_THREADS", "1")
    failures = []
    running: dict[str, subprocess.Popen] = {}
    stopping, reporting = threading.Event(), threading.Lock()

    def launch(spec: RunSpec) -> None:
        if stopping.is_set():
            return
        started = time.perf_counter()
        trains = not is_done(study_dir, spec)
        log(f"  start {spec.key} ({spec.epochs} epochs)" if trains
            else f"  start {spec.key} ({', '.join(missing_evaluations(plan, study_dir, spec))} evaluation only)")
        command = [sys.executable, "-m", "medseg_masksup.study.runner", str(study_dir), spec.key,
                   *(["--workers", str(workers)] if workers is not None else [])]
        # each run in a process group of its own, so that stopping the study stops all of a run's processes
        proc = subprocess.Popen(command, env=env, start_new_session=True)
        running[spec.key] = proc
        try:
            code = proc.wait()
        finally:
            running.pop(spec.key, None)
        if stopping.is_set():
            return
        minutes = (time.perf_counter() - started) / 60
        if code != 0 or missing_evaluations(plan, study_dir, spec):
            failures.append(spec.key)
            log(f"  FAILED {spec.key} after {minutes:.1f} min"
                + (f" (see {run_dir(study_dir, spec) / 'train.log'})" if trains else " (its error is above)"))
            return
        result = json.loads((run_dir(study_dir, spec) / RESULT_FILE).read_text())
        dice = {name: entry["metrics"]["dice"]["mean"] for name, entry in result["eval"].items()}
        extra = "".join(f", {name.removeprefix('final-')} {dice[name]:.4f}" for name, evaluation in EVALUATIONS.items()
                        if name.startswith("final-") and name in dice and not evaluation.uncertainty)  # same masks as final
        log(f"  done  {spec.key} in {minutes:.1f} min: final-checkpoint Dice {dice['final']:.4f}{extra} "
            f"(best val Dice {result['best_val_dice']:.4f} at epoch {result['best_epoch']})")
        if on_result is not None:
            with reporting:
                try:
                    on_result(load_results(study_dir))
                except (OSError, ValueError, KeyError, RuntimeError) as err:  # a report is no reason to stop the study
                    log(f"  (the report after {spec.key} was not written: {err})")

    def be_patient(signum: int) -> None:
        log(f"  {signal.Signals(signum).name} again: still stopping; the runs are saving their state")

    pool = ThreadPoolExecutor(max_workers=max(1, int(jobs)))
    # a second Ctrl-C / SIGTERM while the runs stop must not end compare before them (it would release the
    # study lock while they still write)
    with interrupt_on_signals(on_repeat=be_patient):
        try:
            for future in [pool.submit(launch, spec) for spec in pending]:
                future.result()
        except KeyboardInterrupt as err:
            stopping.set()
            stopped = sorted(running)
            log(f"  stopping {len(stopped)} run(s) ({err.args[0] if err.args else 'SIGINT'}); they save their state")
            for proc in list(running.values()):
                stop_process_group(proc)
            pool.shutdown(wait=True, cancel_futures=True)
            log(f"study stopped ({err.args[0] if err.args else 'SIGINT'}); {len(stopped)} run(s) interrupted"
                f"{': ' + ', '.join(stopped) if stopped else ''}; run the same command again to resume")
            raise SystemExit(exit_status(err)) from None
        finally:
            pool.shutdown(wait=True)  # also when a run's thread raised: the others finish first, as before
    if failures:
        log(f"{len(failures)} run(s) failed: {', '.join(failures)}; run the same command again to retry them")
    return load_results(study_dir)


def stop_process_group(proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Send SIGTERM to the process group that ``proc`` leads and wait until every process in it has exited
    (a training saves its state and marks its MLflow run KILLED on SIGTERM); SIGKILL after ``timeout`` s."""
    def signal_group(signum: int) -> bool:
        try:
            os.killpg(proc.pid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while signal_group(0):  # some process of the group is still there
        proc.poll()  # reap the leader, so that its zombie does not count
        if time.monotonic() > deadline:
            signal_group(signal.SIGKILL)
            break
        time.sleep(0.1)
    proc.wait()


def _main(argv: list[str]) -> int:
    """``python -m medseg_masksup.study.runner <study_dir> <run key> [--workers N]``: one run, in its own process."""
    study_dir, key = Path(argv[0]), argv[1]
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else None
    plan = StudyPlan.load(study_dir / PLAN_FILE)
    spec = next((s for s in plan.runs() if s.key == key), None)
    if spec is None:
        print(f"error: {key} is not a run of {study_dir / PLAN_FILE}", file=sys.stderr)
        return 2
    try:
        run_one(plan, spec, study_dir, workers)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
