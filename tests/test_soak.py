"""Soak test (opt-in: ``pytest -m slow -s tests/test_soak.py``): short trainings and inferences killed at random.

One training and one inference run uninterrupted first, to time them; then trainings (half of them ``--resume
auto``) are started and killed (SIGKILL or SIGINT) at a random moment within 1.1 times that time until
``SOAK_KILLS`` of them were killed; then every unfinished run is resumed until none is left and one more training
starts (it closes what dead trainings left). Then every checkpoint loads with ``weights_only=True``, no MLflow run
is left RUNNING, no run folder is left empty, and after ``SOAK_INFERENCES`` inferences killed at random every mask
and summary in the inference folder reads back. Defaults: 20 kills, 20 inferences (``SOAK_KILLS=4
SOAK_INFERENCES=3`` for a quick look). ``-s`` shows the counts and the wall time; ``SOAK_REPORT=<file>`` also
writes them as JSON. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch
from PIL import Image

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.training.run_claim import LOCK_NAME
from medseg_masksup.tracking.store import sqlite_uri

pytestmark = pytest.mark.slow

N_KILLS = int(os.environ.get("SOAK_KILLS", "20"))
N_INFERENCES = int(os.environ.get("SOAK_INFERENCES", "20"))
ARGS = ["--epochs", "2", "--img_size", "[32,32]", "--synthetic_cases", "12", "--synthetic_size", "32", "--batch_size", "2"]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _train(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
            "--output_dir", str(out), *ARGS, *extra]


def _run_and_maybe_kill(cmd: list[str], rng: random.Random, max_wait: float) -> str:
    """Run ``cmd`` and send it SIGKILL or SIGINT after a random time: the signal's name, or ``"exit <status>"``
    when it ended before (``--resume auto`` with nothing to resume ends with status 2)."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + rng.uniform(0.5, max_wait)
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        return f"exit {proc.returncode}"
    signum = rng.choice([signal.SIGKILL, signal.SIGINT])
    proc.send_signal(signum)
    proc.wait(timeout=300)
    return signal.Signals(signum).name


def _must_succeed(cmd: list[str]) -> float:
    """Run ``cmd`` to its end, which must be a success; its wall time in seconds."""
    start = time.time()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, "\n".join(ln for ln in done.stderr.splitlines() if "rror" in ln)[-3000:]
    return time.time() - start


def test_trainings_and_inferences_killed_at_random_leave_nothing_broken(tmp_path):
    rng = random.Random(0)
    start = time.time()
    out = tmp_path / "runs"
    # an uninterrupted training first: kills are drawn over its length, so they land in every phase (start-up, data,
    # first epoch, checkpoints, the final report) however fast or loaded the machine is
    training_s = _must_succeed(_train(out))
    trainings: list[str] = []
    while sum(o.startswith("SIG") for o in trainings) < N_KILLS and len(trainings) < 3 * N_KILLS:
        resume = ["--resume", "auto"] if rng.random() < 0.5 else []
        trainings.append(_run_and_maybe_kill(_train(out, *resume), rng, 1.1 * training_s))
    runs_root = out / "synthetic-glands" / "masksup"
    resumes = 0
    while [p for p in runs_root.glob("*/last.pt") if not (p.parent / "summary.json").exists()]:  # finish what can be
        assert resumes < len(trainings), "runs left unfinished after as many resumes as trainings"
        _must_succeed(_train(out, "--resume", "auto"))
        resumes += 1
    _must_succeed(_train(out, "--epochs", "1"))  # a fresh start after the chaos closes what dead trainings left

    for path in [*runs_root.glob("*/last.pt"), *runs_root.glob("*/model.pt")]:
        torch.load(path, weights_only=True)  # every checkpoint loads
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    experiment = client.get_experiment_by_name("masksup-synthetic-glands")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs if r.info.status == "RUNNING"] == []
    assert [p for p in runs_root.iterdir() if [f.name for f in p.iterdir()] in ([], [LOCK_NAME])] == []

    ckpt = next(p.parent / "model.pt" for p in runs_root.glob("*/summary.json"))
    images = out / "synthetic" / "images"
    masks = tmp_path / "masks"
    infer = [sys.executable, "-m", "medseg_masksup.cli", "infer", "--input", str(images), "--output_dir", str(masks),
             "--ckpt", str(ckpt), "--no_progress"]
    inference_s = _must_succeed(infer)  # uninterrupted, to draw the kills over its length
    inferences = [_run_and_maybe_kill([*infer, "--overwrite"], rng, 1.1 * inference_s) for _ in range(N_INFERENCES)]
    for path in masks.rglob("*.png"):
        with Image.open(path) as img:
            img.load()  # no mask or overlay half-written
    if (masks / "summary.csv").exists():
        rows = list(csv.DictReader((masks / "summary.csv").open()))
        assert all((masks / r["mask"]).is_file() for r in rows if r["status"] == "ok")

    result = {
        "trainings_started": len(trainings), "trainings_killed": sum(o.startswith("SIG") for o in trainings),
        "trainings": {o: trainings.count(o) for o in sorted(set(trainings))}, "resumes_to_finish": resumes,
        "mlflow_runs": {s: sum(r.info.status == s for r in runs) for s in sorted({r.info.status for r in runs})},
        "inferences": len(inferences), "inferences_killed": sum(o.startswith("SIG") for o in inferences),
        "inference_outcomes": {o: inferences.count(o) for o in sorted(set(inferences))},
        "uninterrupted_training_s": round(training_s, 1), "uninterrupted_inference_s": round(inference_s, 1),
        "wall_time_s": round(time.time() - start), "cpus": os.cpu_count(),
    }
    print(f"\nsoak: {json.dumps(result)}")
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps(result, indent=1) + "\n")
    assert result["trainings_killed"] == N_KILLS, result
