"""``medseg-masksup compare``: a study of methods × seeds × folds on one datalist, resumable, with statistics.

Every arm trains with the same bundle files, overrides, data and seeds; each run is scored by the
``evaluate`` path on the held-out split. Running the same command again skips finished runs and
resumes interrupted ones. Writes ``<output_dir>/report/`` (summary.md/.csv, paired.csv, bars.png,
robustness.png, cases.png; the tables are rewritten after each run that finishes, the figures at the end); all runs sit in one MLflow experiment in ``<output_dir>/mlflow.db``,
tagged study / arm / method / seed / fold.

``--tta`` adds an evaluation of each final checkpoint with flip TTA (``eval-final-tta/``) and a
"final + TTA" section to the report; runs finished before it was asked get only that evaluation.
``--keep_largest`` does the same for nnU-Net's post-processing (keep only the largest connected component)
and the report says, per arm, whether the cross-validation chooses it (``postprocessing.json``).
``--uncertainty`` scores each final checkpoint's held-out cases with the candidate quality scores
(``eval-final-uncertainty/``, as ``evaluate --uncertainty``) and the report pools them per arm over the folds:
risk-coverage table (``risk_coverage.json``) and figure (``risk_coverage-<arm>-s<seed>.png``).
A study keeps each of them once asked.

``--arm NAME METHOD KEY=VALUE ...`` defines an arm of one's own (a method with settings of its own, e.g. a recipe
option) and adds it to the study; it is compared with ``baseline`` on the same folds and seeds like the others.

Exit status: 0 when every run finished, 1 when some failed (run again to retry), 2 for bad settings.
"""

from __future__ import annotations

import argparse

from . import run_command


def build_parser() -> argparse.ArgumentParser:
    from medseg_masksup.study.plan import ARMS

    p = argparse.ArgumentParser(prog="medseg-masksup compare", description="Compare MaskSup with its baselines: "
                                "arms x seeds x folds, same settings, paired statistics.")
    p.add_argument("--datalist", help="a prepared datalist.json (needed unless --report_only)")
    p.add_argument("--output_dir", required=True, help="the study folder (re-use it to resume)")
    p.add_argument("--name", default=None, help="study name for MLflow tags (default: the output folder's name)")
    p.add_argument("--arms", nargs="+", default=["baseline", "masksup"], choices=list(ARMS),
                   help="baseline, context, masksup, baseline-2x (= baseline with twice the epochs: MaskSup's compute)")
    p.add_argument("--arm", nargs="+", action="append", default=[], metavar="NAME METHOD [KEY=VALUE]",
                   help="define an arm of your own and add it to the study: a method (baseline, context, masksup) "
                        "with settings of its own, e.g. --arm masksup-ema masksup ema_decay=0.999 (repeatable)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default: 0)")
    p.add_argument("--folds", nargs="+", type=int, default=[0],
                   help="validation folds of the datalist (ignored by datalists with a validation list); 0 1 2 3 4 = 5-fold CV")
    p.add_argument("--epochs", type=int, help="epochs of every arm (baseline-2x: twice this; needed unless --report_only)")
    p.add_argument("--config_file", nargs="*", default=[],
                   help="extra bundle files merged over train.json, e.g. bundles/masksup/presets/glas.json")
    p.add_argument("--preset", default=None, help="a dataset preset of the bundle (glas, kvasir, ph2, isic2018, cvc), "
                   "merged before --config_file")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="bundle overrides for every run, e.g. batch_size=8")
    p.add_argument("--eval_split", default="auto", choices=("auto", "test", "validation", "heldout"),
                   help="split scored after training (auto: labelled test, else validation, else the held-out fold)")
    p.add_argument("--tta", action="store_true",
                   help="also score each final checkpoint with flip TTA (finished runs get only that evaluation; "
                        "the study keeps it once asked)")
    p.add_argument("--keep_largest", action="store_true",
                   help="also score each final checkpoint keeping only the largest connected component, and choose "
                        "it per arm where it raises the mean Dice of the held-out cases (nnU-Net's rule); the study "
                        "keeps it once asked")
    p.add_argument("--uncertainty", action="store_true",
                   help="also score each final checkpoint's held-out cases with the candidate quality scores "
                        "(evaluate --uncertainty; the masks are unchanged) and report their risk-coverage per arm, "
                        "pooled over the folds (finished runs get only that evaluation; the study keeps it once asked)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (each with OMP_NUM_THREADS=1 unless set)")
    p.add_argument("--workers", type=int, default=None,
                   help="data-loader processes per run (the bundle's num_workers; default: its 0). Like --jobs, a "
                        "choice of this invocation, not a study setting: a study started on the CPU resumes on a GPU "
                        "with --workers 7. On a GPU use about cores / jobs - 1")
    p.add_argument("--first", nargs="+", default=[], metavar="ARM",
                   help="train these arms' unfinished runs before the others' (a choice of this invocation, not a "
                        "study setting): a study cut short then holds complete comparisons of them, e.g. --first "
                        "baseline masksup puts an equal-compute arm last")
    p.add_argument("--report_only", action="store_true",
                   help="write the report of the finished runs of --output_dir; train nothing (no other option needed)")
    p.add_argument("--report_arms", nargs="+", default=None, metavar="ARM",
                   help="with --report_only: report only these arms of the study (built-in or defined), e.g. "
                        "baseline and masksup while a third arm is unfinished (the tables compare only the seeds "
                        "and folds that every reported arm finished); default: all")
    p.add_argument("--report_dir", default=None,
                   help="where the report goes (default: <output_dir>/report)")
    return p


def main(argv: list[str]) -> int:
    return run_command("compare", build_parser(), argv, _compare)


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medseg_masksup.errors import UserError
    from medseg_masksup.study.plan import StudyPlan, parse_custom_arms, parse_overrides
    from medseg_masksup.study.report import write_study_report
    from medseg_masksup.study.runner import PLAN_FILE, load_results, missing_evaluations, run_study

    out = Path(args.output_dir)
    report_dir = Path(args.report_dir) if args.report_dir else out / "report"
    if args.report_arms and not args.report_only:
        raise UserError("--report_arms works with --report_only (a study's own report covers all its arms)")
    if args.report_only:
        if not (out / PLAN_FILE).is_file():
            raise UserError(f"{out} holds no study ({PLAN_FILE} not found); nothing to report")
        saved = StudyPlan.load(out / PLAN_FILE)
        results = load_results(out)
        if args.report_arms:
            unknown = [arm for arm in args.report_arms if arm not in saved.arms]
            if unknown:
                raise UserError(f"--report_arms {' '.join(unknown)}: not an arm of {out / PLAN_FILE} "
                                f"(its arms: {', '.join(saved.arms)})")
            results = [r for r in results if r["arm"] in args.report_arms]
        paths = write_study_report(results, report_dir, title=args.name or saved.name)
        print(paths["summary_md"].read_text())
        print(f"report: {report_dir}")
        return 0
    missing = [option for option, value in (("--datalist", args.datalist), ("--epochs", args.epochs)) if value is None]
    if missing:
        raise UserError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} needed to run a study "
                        "(only --report_only works without)")
    overrides = parse_overrides(args.set)
    if args.preset:
        import json
        import sys

        from medseg_masksup.bundle_files import bundle_file
        from medseg_masksup.training.settings import fitted_warmup

        preset = bundle_file(f"presets/{args.preset}.json")
        args.config_file = [str(preset), *args.config_file]
        fitted = fitted_warmup(args.preset, json.loads(preset.read_text()), {**overrides, "epochs": args.epochs})
        if fitted is not None:
            print(fitted[1], file=sys.stderr)
            overrides["warmup_epochs"] = fitted[0]
    custom_arms = parse_custom_arms(args.arm)
    plan = StudyPlan(name=args.name or out.resolve().name, datalist=args.datalist, epochs=args.epochs,
                     arms=list(dict.fromkeys([*args.arms, *custom_arms])), custom_arms=custom_arms,
                     seeds=args.seeds, folds=args.folds, config_files=args.config_file,
                     overrides=overrides, eval_split=args.eval_split, tta=args.tta,
                     keep_largest=args.keep_largest, uncertainty=args.uncertainty)
    if not Path(args.datalist).is_file():
        raise UserError(f"--datalist {args.datalist} does not exist")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}")
    def interim_report(results: list[dict]) -> None:  # tables as the runs finish; figures at the end
        write_study_report(results, report_dir, title=plan.name, figures=False)

    results = run_study(plan, out, jobs=args.jobs, workers=args.workers, first=args.first, on_result=interim_report)
    paths = write_study_report(results, report_dir, title=plan.name)
    print(paths["summary_md"].read_text())
    print(f"report: {report_dir}")
    return 1 if any(missing_evaluations(plan, out, s) for s in plan.runs()) else 0
