"""The README's Python snippet and its wheel-install path command run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medseg_masksup.bundle_files import bundle_dir
from medseg_masksup.commands import bundle_path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(language: str, containing: str) -> str:
    """The README's fenced ``language`` block that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


@pytest.mark.integration
def test_readme_mlflow_snippet_loads_the_newest_training_run_s_model(tmp_path):
    """Against a store laid out as the default training leaves it (runs/mlflow.db, experiment
    masksup-synthetic-glands), with a newer evaluation run (no model) filed after the training run."""
    import mlflow

    from medseg_masksup.tracking.backbone_model import log_backbone_model
    from medseg_masksup.networks import build_network
    from medseg_masksup.record import TrainingRecord
    from medseg_masksup.tracking.portable_store import create_experiment
    from medseg_masksup.tracking.store import sqlite_uri

    (tmp_path / "runs").mkdir()
    client = mlflow.MlflowClient(sqlite_uri(str(tmp_path / "runs" / "mlflow.db")))
    experiment = create_experiment(client, "masksup-synthetic-glands")
    training = client.create_run(experiment, run_name="masksup").info.run_id
    torch.manual_seed(0)
    info = log_backbone_model(client, training, build_network("unet").eval(), TrainingRecord(), step=1)
    client.set_tag(training, "mlflow_model", info.model_uri)
    client.set_terminated(training)
    client.set_terminated(client.create_run(experiment, run_name="evaluate-masksup").info.run_id)

    code = readme_block("python", "mlflow.pyfunc.load_model") + "print(run.info.run_id, logits.shape)\n"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**env, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"{training} (2, 1, 128, 128)"


def test_bundle_path_prints_the_bundle_and_its_files(capsys, tmp_path):
    assert bundle_path.main([]) == 0
    assert capsys.readouterr().out.strip() == str(bundle_dir())
    assert bundle_path.main(["presets/glas.json"]) == 0
    assert capsys.readouterr().out.strip() == str(bundle_dir() / "presets" / "glas.json")
    assert bundle_path.main(["nothing.json"]) == 2
    assert capsys.readouterr().err.strip() == f"medseg-masksup bundle-path: error: bundle file not found: {bundle_dir() / 'nothing.json'}"


def test_readme_tells_wheel_users_the_bundle_path_command():
    text = README.read_text()
    assert '--config_file "$(medseg-masksup bundle-path train.json)"' in text
