"""The predictor is built in one place, Predictor.from_checkpoint: infer, evaluate, robustness, the study report and the
bundles all call it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from infer_fixtures import random_checkpoint

from medseg_masksup.checkpoint import CheckpointError
from medseg_masksup.inference.options import InferenceOptions
from medseg_masksup.inference.predictor import Predictor

PACKAGE = Path(__file__).resolve().parents[1] / "medseg_masksup"


def test_from_checkpoint_takes_a_run_folder_or_an_ensemble(tmp_path):
    first = random_checkpoint(tmp_path / "a" / "model.pt", seed=0)
    second = random_checkpoint(tmp_path / "b" / "model.pt", seed=1)
    options = InferenceOptions(tta=True, threshold=0.3, device="cpu")
    one = Predictor.from_checkpoint(first.parent, options)
    assert len(one.networks) == 1 and one.device == torch.device("cpu")
    assert one.options is options and one.threshold == 0.3 and one.record.img_size == [32, 32]
    reference = torch.load(first, weights_only=True)["model"]
    assert all(torch.equal(one.network.state_dict()[k], v) for k, v in reference.items())
    both = Predictor.from_checkpoint([first, second], device="cpu")
    assert len(both.networks) == 2 and both.options == InferenceOptions()
    assert not torch.equal(next(both.networks[0].parameters()), next(both.networks[1].parameters()))


def test_from_checkpoint_refuses_what_load_ensemble_refuses(tmp_path):
    with pytest.raises(CheckpointError, match=f"^checkpoint not found: {tmp_path / 'missing.pt'}$"):
        Predictor.from_checkpoint(tmp_path / "missing.pt", device="cpu")


def test_no_module_assembles_a_predictor_from_loaded_networks_itself():
    """Outside predictor.py a Predictor is only made by from_checkpoint (bundle_parts: the untrained network_def
    MONAI's property check reads before a checkpoint is given)."""
    makers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Predictor":
                makers.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert [m.split(":")[0] for m in makers] == ["inference/bundle_parts.py"], makers
    bundles = PACKAGE.parent / "bundles" / "masksup"
    for name in ("inference.json", "evaluate.json"):
        text = (bundles / name).read_text()
        assert "bundle_parts.predictor_of(@ckpt, @options, @torch_device, @network_def)" in text
        assert "inference.predictor.Predictor\"" not in text
