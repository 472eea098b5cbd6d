"""inference.json and evaluate.json pass MONAI's typed-workflow check for ``infer`` as MONAI Label / Deploy run it
(no ``--input``, ``--ckpt`` or ``--datalist`` given), while a real run without them still stops with one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from infer_fixtures import random_checkpoint, write_labelled_set

from medseg_masksup.inference.predictor import Predictor
from medseg_masksup.record import TrainingRecord

BUNDLE = Path(__file__).resolve().parents[1] / "bundles" / "masksup"
CONFIGS = ("inference.json", "evaluate.json")


def _workflow(config: str, **override):
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(config_file=str(BUNDLE / config), workflow_type="infer", **override)
    workflow.initialize()
    return workflow


@pytest.mark.parametrize("config", CONFIGS)
def test_typed_infer_properties_are_all_there_before_any_input_is_given(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    workflow = _workflow(config)
    assert workflow.check_properties() == []
    assert isinstance(workflow.inferer, Predictor)
    assert workflow.inferer.record.state_dict() == {**TrainingRecord().state_dict(), "versions": workflow.inferer.record.versions}
    assert workflow.dataset._items is None  # nothing read: the cases are found when the run first uses them
    assert list(tmp_path.iterdir()) == []  # and nothing written


def test_evaluate_bundle_properties_follow_the_checkpoint_and_datalist(tmp_path):
    ckpt = random_checkpoint(tmp_path / "run" / "model.pt")
    datalist = write_labelled_set(tmp_path / "data", n=3)
    workflow = _workflow("evaluate.json", ckpt=str(ckpt.parent), datalist=str(datalist), device="cpu")
    assert workflow.check_properties() == []
    assert [item["id"] for item in workflow.dataset] == ["case0", "case1", "case2"]
    reference = torch.load(ckpt, weights_only=True)["model"]
    (network,) = workflow.inferer.networks
    assert all(torch.equal(network.state_dict()[k], v) for k, v in reference.items())
    assert workflow.inferer.record.img_size == [32, 32]
    assert workflow.evaluator.keywords["ckpt"] == str(ckpt.parent)


def test_inference_bundle_records_the_resolved_checkpoint(tmp_path):
    ckpt = random_checkpoint(tmp_path / "run" / "model.pt")
    workflow = _workflow("inference.json", ckpt=str(ckpt.parent), input=str(tmp_path), device="cpu")
    assert workflow.evaluator.checkpoint == str(ckpt)
    assert workflow.network_def is not workflow.parser.get_parsed_content("network")
    assert workflow.inferer.record.img_size == [32, 32]


@pytest.mark.parametrize(("config", "args", "message"), [
    ("inference.json", ["--ckpt", "m.pt"], "error: no input given: pass --input <file or folder>"),
    ("inference.json", ["--input", "."], "error: no checkpoint given: pass --ckpt <model.pt or training run folder>"),
    ("evaluate.json", ["--datalist", "d.json"], "error: no checkpoint given: pass --ckpt <model.pt or training run folder>"),
])
@pytest.mark.integration
def test_a_run_without_its_inputs_stops_with_one_line(config, args, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(BUNDLE / config), *args],
                          cwd=tmp_path, capture_output=True, text=True, env={**env, "PYTHONWARNINGS": "ignore"}, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()][-1] == message
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output folder made before the refusal
