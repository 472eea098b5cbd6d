"""Soak test (opt-in: ``pytest -m slow tests/test_soak.py``): short trainings and inferences killed at random.

After the chaos, every unfinished run is resumed until none is left; then every checkpoint loads with
``weights_only=True``, every MLflow run that reached its first checkpoint ended FINISHED or KILLED, and every
mask and summary in the inference folder reads back. ``SOAK_TRAININGS`` / ``SOAK_INFERENCES`` set the counts
(default 20 each).
"""

from __future__ import annotations

import csv
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
from medseg_masksup.training.tracking import sqlite_uri

pytestmark = pytest.mark.slow

N_TRAININGS = int(os.environ.get("SOAK_TRAININGS", "20"))
N_INFERENCES = int(os.environ.get("SOAK_INFERENCES", "20"))
ARGS = ["--epochs", "2", "--img_size", "[32,32]", "--synthetic_cases", "12", "--synthetic_size", "32", "--batch_size", "2"]
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _train(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
            "--output_dir", str(out), *ARGS, *extra]


def _run_and_maybe_kill(cmd: list[str], rng: random.Random, max_wait: float) -> int:
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + rng.uniform(0.5, max_wait)
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is None:
        proc.send_signal(rng.choice([signal.SIGKILL, signal.SIGINT]))
    return proc.wait(timeout=300)


def test_trainings_and_inferences_killed_at_random_leave_nothing_broken(tmp_path):
    rng = random.Random(0)
    out = tmp_path / "runs"
    for _ in range(N_TRAININGS):
        _run_and_maybe_kill(_train(out, *(["--resume", "auto"] if rng.random() < 0.5 else [])), rng, 40)
    runs_root = out / "synthetic-glands" / "masksup"
    for _ in range(N_TRAININGS):  # finish whatever can be finished
        if not [p for p in runs_root.glob("*/last.pt") if not (p.parent / "summary.json").exists()]:
            break
        done = subprocess.run(_train(out, "--resume", "auto"), cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)
        assert done.returncode == 0, "\n".join(ln for ln in done.stderr.splitlines() if "Error" in ln)[-3000:]

    if not list(runs_root.glob("*/summary.json")):  # every training was killed early: one run to infer with
        done = subprocess.run(_train(out), cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)
        assert done.returncode == 0, "\n".join(ln for ln in done.stderr.splitlines() if "Error" in ln)[-3000:]

    for path in [*runs_root.glob("*/last.pt"), *runs_root.glob("*/model.pt")]:
        torch.load(path, weights_only=True)  # every checkpoint loads
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    experiment = client.get_experiment_by_name("masksup-synthetic-glands")
    checkpointed = {torch.load(p, weights_only=True)["mlflow_run_id"] for p in runs_root.glob("*/last.pt")}
    for run in client.search_runs([experiment.experiment_id]):
        if run.info.run_id in checkpointed:
            assert run.info.status in ("FINISHED", "KILLED"), (run.info.run_id, run.info.status)

    ckpt = next(p.parent / "model.pt" for p in runs_root.glob("*/summary.json"))
    images = out / "synthetic" / "images"
    masks = tmp_path / "masks"
    for i in range(N_INFERENCES):
        cmd = [sys.executable, "-m", "medseg_masksup.cli", "infer", "--input", str(images), "--output_dir", str(masks),
               "--ckpt", str(ckpt), "--no_progress", *(["--overwrite"] if i else [])]
        _run_and_maybe_kill(cmd, rng, 15)
    for path in masks.rglob("*.png"):
        with Image.open(path) as img:
            img.load()  # no mask or overlay half-written
    if (masks / "summary.csv").exists():
        rows = list(csv.DictReader((masks / "summary.csv").open()))
        assert all((masks / r["mask"]).is_file() for r in rows if r["status"] == "ok")
