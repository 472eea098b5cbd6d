"""``medseg-masksup compare`` end to end on tiny data: 2 arms, 1 epoch; a second call skips finished runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medseg_masksup.commands.compare import main as compare
from medseg_masksup.study.runner import load_results


@pytest.mark.integration
def test_study_runs_evaluates_reports_and_resumes(tiny_study, capsys, monkeypatch):
    """``tiny_study`` is a copy of the study the session trained with ``compare``."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study
    results = load_results(study)
    assert sorted(r["key"] for r in results) == ["baseline-s0-f0", "masksup-s0-f0"]
    for result in results:
        for which in ("best", "final"):
            metrics = result["eval"][which]["metrics"]
            assert metrics["dice"]["n"] == 2 and 0.0 <= metrics["dice"]["mean"] <= 1.0
    report = study / "report"
    for name in ("summary.md", "summary.csv", "paired.csv", "bars.png", "robustness.png", "cases.png"):
        assert (report / name).is_file(), name
    assert "| masksup | final | 1 | 2 |" in (report / "summary.md").read_text()

    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.study = 'tiny'")
    training = {r.info.run_name: r for r in runs if r.data.tags.get("kind") is None}
    assert set(training) == {"baseline-s0-f0", "masksup-s0-f0"}
    assert training["masksup-s0-f0"].data.tags["arm"] == "masksup" and training["masksup-s0-f0"].data.tags["fold"] == "0"
    evaluations = [r for r in runs if r.data.tags.get("kind") == "evaluation"]
    assert len(evaluations) == 4 and all(r.data.tags["mlflow.parentRunId"] for r in evaluations)

    # resume: finished runs are skipped; a run whose evaluation was lost is only evaluated again
    log = study / "runs" / "baseline-s0-f0" / "train.log"
    trained = log.read_text()
    (study / "runs" / "masksup-s0-f0" / "result.json").unlink()
    capsys.readouterr()
    assert compare(args) == 0
    out = capsys.readouterr().out
    assert "2 runs, 1 already done, 1 to run" in out
    assert log.read_text() == trained
    assert json.loads((study / "runs" / "masksup-s0-f0" / "result.json").read_text())["key"] == "masksup-s0-f0"
    assert len(list((study / "runs" / "masksup-s0-f0" / "train").glob("*/masksup/*/summary.json"))) == 1


def test_changed_settings_are_refused(tmp_path, capsys):
    from medseg_masksup.study.plan import StudyPlan

    (tmp_path / "d.json").write_text("{}")
    StudyPlan(name="s", datalist=str(tmp_path / "d.json"), epochs=5).save(tmp_path / "study.json")
    code = compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(tmp_path), "--epochs", "6"])
    assert code == 2
    assert "holds a study with other settings (epochs: 5 -> 6" in capsys.readouterr().err


def test_a_second_compare_on_a_study_in_use_is_refused(tmp_path, capsys):
    """Two compares on one folder would train the same unfinished runs into the same run folders."""
    from filelock import FileLock

    (tmp_path / "d.json").write_text("{}")
    study = tmp_path / "study"
    study.mkdir()
    with FileLock(str(study / "study.lock"), timeout=0):  # what a running compare holds
        assert compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(study), "--epochs", "1"]) == 2
    assert "is in use by another 'compare' (it holds" in capsys.readouterr().err
    assert not (study / "study.json").exists()  # refused before touching the plan


def test_negative_workers_are_refused(tmp_path, capsys):
    (tmp_path / "d.json").write_text("{}")
    assert compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(tmp_path / "s"), "--epochs", "1",
                    "--workers", "-1"]) == 2
    assert "--workers must be 0 or more, got -1" in capsys.readouterr().err


@pytest.mark.integration
def test_a_user_defined_arm_trains_with_its_settings_beside_a_finished_study(tiny_study, capsys, monkeypatch):
    """``--arm`` adds a setting-variant arm to a finished study: only its runs train, with its overrides, and the
    report compares it with the baseline on the same cases. ``--workers`` is no study setting: a study started
    without it resumes with it (a GPU machine continuing a CPU study), and the new run's loader uses it. A
    stale RUNNING MLflow run of the new run (its process killed before any last.pt) is marked KILLED."""
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    study, args = tiny_study
    # a training of this arm that died (SIGKILL) before its first last.pt: its MLflow run was left RUNNING
    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    experiment = client.search_experiments()[0].experiment_id
    stale = client.create_run(experiment, run_name="baseline-ls-s0-f0", tags={"study": "tiny"}).info.run_id
    capsys.readouterr()
    assert compare([*args, "--arm", "baseline-ls", "baseline", "seg_loss=dicece", "--workers", "1"]) == 0
    assert client.get_run(stale).info.status == "KILLED"  # closed when the run started afresh
    assert "3 runs, 2 already done, 1 to run" in capsys.readouterr().out
    folder = study / "runs" / "baseline-ls-s0-f0"
    overrides = json.loads((folder / "overrides.json").read_text())
    assert overrides["seg_loss"] == "dicece" and overrides["method"] == "baseline" and overrides["num_workers"] == 1
    assert "num_workers" not in json.loads((study / "study.json").read_text())["settings"]["overrides"]
    assert overrides["run_tags"]["arm"] == "baseline-ls"
    assert json.loads((folder / "result.json").read_text())["arm"] == "baseline-ls"
    record = json.loads(next(folder.glob("train/*/*/*/training_record.json")).read_text())
    assert record["seg_loss"] == "dicece"
    text = (study / "report" / "summary.md").read_text()
    assert "| baseline-ls | final | 1 |" in text and "| baseline-ls | final | 1 | 2 |" in text.split("arm − baseline")[1]
    plan = json.loads((study / "study.json").read_text())
    assert plan["custom_arms"] == {"baseline-ls": {"method": "baseline", "overrides": {"seg_loss": "dicece"}}}
    # resuming without repeating --arm keeps the arm; nothing is left to run
    assert compare(args) == 0
    assert "3 runs, 3 already done, 0 to run" in capsys.readouterr().out


@pytest.mark.integration
def test_report_only_needs_nothing_but_the_study_folder(tiny_study, tmp_path, capsys):
    """A committed study folder is reported without its datalist (another machine may not have the data)."""
    study, args = tiny_study
    report = study / "report" / "summary.md"
    report.unlink()
    assert compare(["--output_dir", str(study), "--report_only"]) == 0
    assert report.read_text().startswith("### tiny")
    assert compare(["--output_dir", str(tmp_path / "nothing"), "--report_only"]) == 2
    assert "holds no study (study.json not found)" in capsys.readouterr().err
    assert compare(["--output_dir", str(study)]) == 2
    assert "--datalist and --epochs are needed to run a study" in capsys.readouterr().err


def _processes_mentioning(text: str) -> list[int]:
    """Pids of the live (not zombie) processes whose command line contains ``text``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode() \
                    and " Z " not in (proc / "stat").read_text():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.integration
def test_sigterm_to_compare_stops_its_trainings_and_the_study_resumes(tmp_path):
    """``kill`` / ``timeout`` / a scheduler send SIGTERM to ``compare`` only; its trainings (children and
    grandchildren) used to go on unseen, writing into the study folder. Now they stop with it, resumably."""
    import signal
    import subprocess
    import sys
    import time

    import pytest
    from mlflow.tracking import MlflowClient

    from conftest import REPO
    from study_fixtures import tiny_study_args

    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to list processes")
    study = tmp_path / "study"
    args = [*tiny_study_args(tmp_path / "data", study), "--arms", "baseline", "--epochs", "30"]
    command = [sys.executable, "-m", "medseg_masksup.cli", "compare", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not list(study.glob("runs/baseline-s0-f0/train/*/*/*/last.pt")):
        assert proc.poll() is None and time.time() < deadline, "the training never saved a last.pt"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=180)[0]
    assert proc.returncode == 143, output[-3000:]
    assert "study stopped (SIGTERM); 1 run(s) interrupted: baseline-s0-f0; run the same command again" in output
    assert _processes_mentioning(str(study)) == [], "a training of the study outlived compare"
    client = MlflowClient(f"sqlite:///{study / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.study = 'tiny'")
    assert run.info.status == "KILLED"
    log = (study / "runs" / "baseline-s0-f0" / "train.log").read_text()
    assert "interrupted at epoch" in log and "by SIGTERM; resume with: python -m monai.bundle" in log

    resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed" in (study / "runs" / "baseline-s0-f0" / "train.log").read_text()
    assert load_results(study)[0]["key"] == "baseline-s0-f0"


@pytest.mark.integration
def test_first_trains_the_named_arms_before_the_others(tmp_path, capsys, monkeypatch):
    """``--first`` reorders the unfinished runs (the named arms first, study order otherwise); the trainings are
    faked here (each exits 1), only the order in which they start is checked."""
    from medseg_masksup.study import runner

    started = []

    class FailingTraining:
        def __init__(self, command, **kwargs):
            started.append(command[command.index("medseg_masksup.study.runner") + 2])
            self.pid = os.getpid()

        def wait(self):
            return 1

    monkeypatch.setattr(runner.subprocess, "Popen", FailingTraining)
    (tmp_path / "d.json").write_text("{}")
    args = ["--datalist", str(tmp_path / "d.json"), "--output_dir", str(tmp_path / "s"), "--epochs", "1",
            "--arms", "baseline", "masksup", "baseline-2x", "--seeds", "0", "1"]
    assert compare([*args, "--first", "baseline", "masksup"]) == 1
    assert started == ["baseline-s0-f0", "masksup-s0-f0", "baseline-s1-f0", "masksup-s1-f0",
                       "baseline-2x-s0-f0", "baseline-2x-s1-f0"]
    started.clear()
    assert compare(args) == 1  # without it: the study's order, seed by seed
    assert started == ["baseline-s0-f0", "masksup-s0-f0", "baseline-2x-s0-f0",
                       "baseline-s1-f0", "masksup-s1-f0", "baseline-2x-s1-f0"]

    plan = (tmp_path / "s" / "study.json").read_text()
    assert compare([*args, "--arms", "context", "--first", "ctx"]) == 2  # refused before the plan is touched
    assert "--first ctx: not an arm of this study (its arms: baseline, masksup, baseline-2x, context)" \
        in capsys.readouterr().err
    assert (tmp_path / "s" / "study.json").read_text() == plan


@pytest.mark.integration
def test_a_second_signal_while_compare_stops_its_runs_is_reported_not_obeyed(tmp_path, monkeypatch):
    """An impatient second Ctrl-C / SIGTERM used to meet the default handler and end ``compare`` while its runs
    were still saving, releasing the study lock under them. Now compare says so and waits. The training and the
    stop are faked; the second SIGTERM arrives while compare stops its run."""
    import signal
    import threading

    import pytest

    from medseg_masksup.study import runner
    from medseg_masksup.study.plan import StudyPlan

    release, lines, outside = threading.Event(), [], []

    class BlockingTraining:
        def __init__(self, command, **kwargs):
            self.pid = os.getpid()

        def wait(self):
            os.kill(os.getpid(), signal.SIGTERM)  # the first signal, while the run trains
            release.wait(60)
            return 1

    def stop(proc, timeout=120.0):
        os.kill(os.getpid(), signal.SIGTERM)  # the second signal, while the run stops
        release.set()

    monkeypatch.setattr(runner.subprocess, "Popen", BlockingTraining)
    monkeypatch.setattr(runner, "stop_process_group", stop)
    (tmp_path / "d.json").write_text("{}")
    plan = StudyPlan(name="s", datalist=str(tmp_path / "d.json"), epochs=1, arms=["baseline"])
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: outside.append(signum))  # instead of dying
    try:
        with pytest.raises(SystemExit) as stopped:
            runner.run_study(plan, tmp_path / "study", log=lines.append)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped.value.code == 143
    assert outside == []  # both signals went to compare
    assert "  stopping 1 run(s) (SIGTERM); they save their state" in lines
    assert "  SIGTERM again: still stopping; the runs are saving their state" in lines
    assert lines[-1].startswith("study stopped (SIGTERM); 1 run(s) interrupted: baseline-s0-f0")


@pytest.mark.integration
def test_the_report_tables_follow_the_runs_as_they_finish(tmp_path, capsys, monkeypatch):
    """A study of hours used to show nothing until its last run: now the tables are rewritten after each run
    (the figures at the end), and a failing report does not stop the study. Trainings are faked: each writes
    its run's result.json."""
    from study_fixtures import fake_run

    from medseg_masksup.study import runner
    from medseg_masksup.study.plan import StudyPlan

    class FinishedTraining:
        def __init__(self, command, **kwargs):
            at = command.index("medseg_masksup.study.runner")
            self.study, self.key = Path(command[at + 1]), command[at + 2]

        def wait(self):
            arm, gain = ("masksup", 0.02) if self.key.startswith("masksup") else ("baseline", 0.0)
            folder = self.study / "runs" / self.key
            folder.mkdir(parents=True)
            dice = [0.6 + gain, 0.7 + gain, 0.8 + gain]
            result = {**fake_run(folder, arm, {"best": dice, "final": dice}), "best_val_dice": 0.7, "best_epoch": 1}
            (folder / "result.json").write_text(json.dumps(result))
            return 0

    monkeypatch.setattr(runner.subprocess, "Popen", FinishedTraining)
    (tmp_path / "d.json").write_text("{}")
    seen, lines = [], []
    plan = StudyPlan(name="s", datalist=str(tmp_path / "d.json"), epochs=1, arms=["baseline", "masksup"])

    def report(results):
        seen.append(sorted(r["key"] for r in results))
        raise OSError("disk full")

    runner.run_study(plan, tmp_path / "study", log=lines.append, on_result=report)
    assert seen == [["baseline-s0-f0"], ["baseline-s0-f0", "masksup-s0-f0"]]
    assert "  (the report after masksup-s0-f0 was not written: disk full)" in lines

    # through compare: the interim tables, then the full report when the study ends
    from medseg_masksup.study.report import write_study_report

    interim = write_study_report(runner.load_results(tmp_path / "study"), tmp_path / "interim", figures=False)
    assert "Interim report of the 2 compared runs finished so far" in interim["summary_md"].read_text()
    assert "bars" not in interim and not (tmp_path / "interim" / "bars.png").exists()
    from medseg_masksup.study import report as report_module

    drawn = []

    def recording(*args, figures=True, **kwargs):
        drawn.append(figures)
        return write_study_report(*args, figures=figures, **kwargs)

    monkeypatch.setattr(report_module, "write_study_report", recording)
    assert compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(tmp_path / "s2"), "--epochs", "1"]) == 0
    assert drawn == [False, False, True]  # tables after each run, figures once at the end
    text = (tmp_path / "s2" / "report" / "summary.md").read_text()
    assert "| masksup | final | 1 | 3 | 0.0200 [" in text and "Interim" not in text
    assert (tmp_path / "s2" / "report" / "bars.png").is_file()


def test_report_only_reports_the_arms_asked_for_while_another_is_unfinished(tmp_path, capsys):
    """A study's tables pair only the seeds and folds every arm finished, so one slow arm held back every
    comparison; ``--report_arms`` reports some arms of it, into ``--report_dir``."""
    from study_fixtures import fake_run

    from medseg_masksup.study.plan import StudyPlan

    study = tmp_path / "study"
    study.mkdir()
    StudyPlan(name="s", datalist=str(tmp_path / "d.json"), epochs=1, arms=["baseline", "masksup", "baseline-2x"],
              seeds=[0, 1]).save(study / "study.json")
    for arm, seeds in (("baseline", (0, 1)), ("masksup", (0, 1)), ("baseline-2x", (0,))):
        for seed in seeds:
            folder = study / "runs" / f"{arm}-s{seed}-f0"
            folder.mkdir(parents=True)
            dice = [0.6, 0.7, 0.8 + 0.01 * seed]
            result = {**fake_run(folder, arm, {"best": dice, "final": dice}), "key": folder.name, "seed": seed}
            (folder / "result.json").write_text(json.dumps(result))
    assert compare(["--output_dir", str(study), "--report_only"]) == 0
    assert "Left out until every arm has finished their seed and fold" in capsys.readouterr().out
    two = tmp_path / "two-arms"
    assert compare(["--output_dir", str(study), "--report_only", "--report_arms", "baseline", "masksup",
                    "--report_dir", str(two)]) == 0
    text = (two / "summary.md").read_text()
    assert "| masksup | final | 2 | 3 |" in text and "baseline-2x" not in text and "Left out" not in text
    assert "Left out" in (study / "report" / "summary.md").read_text()  # the study's own report is kept
    assert compare(["--output_dir", str(study), "--report_only", "--report_arms", "context"]) == 2
    assert "--report_arms context: not an arm of" in capsys.readouterr().err
    assert compare(["--output_dir", str(study), "--datalist", str(tmp_path / "d.json"), "--epochs", "1",
                    "--report_arms", "masksup"]) == 2
    assert "--report_arms works with --report_only" in capsys.readouterr().err


@pytest.mark.integration
def test_a_preset_study_with_a_short_budget_clamps_the_warm_up_in_one_line(tmp_path, capsys, monkeypatch):
    """``compare --preset glas --epochs 3`` used to fail in every run (warm-up 5 >= 3 epochs); the plan now
    carries the clamped warm-up, said once, before any run starts (trainings faked: only the plan is checked)."""
    from medseg_masksup.study import runner
    from medseg_masksup.study.plan import StudyPlan

    class FailingTraining:
        def __init__(self, command, **kwargs):
            self.pid = os.getpid()

        def wait(self):
            return 1

    monkeypatch.setattr(runner.subprocess, "Popen", FailingTraining)
    (tmp_path / "d.json").write_text("{}")
    assert compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(tmp_path / "s"), "--epochs", "3",
                    "--preset", "glas", "--arms", "baseline"]) == 1
    err = capsys.readouterr().err
    assert err.count("note: the glas preset's warm-up of 5 epochs is clamped to 2 to fit --epochs 3") == 1
    assert StudyPlan.load(tmp_path / "s" / "study.json").overrides == {"warmup_epochs": 2}
