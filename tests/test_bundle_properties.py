"""The bundles follow MONAI's conventions: typed workflow properties (read by MONAI Label / Deploy),
the documented ``ckpt_export`` command, honest metadata, a LICENSE, and files that ship in the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from infer_fixtures import random_checkpoint

from medseg_masksup.bundle_files import bundle_dir, bundle_file

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "masksup"


def _workflow(config: str, kind: str, **override):
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(config_file=str(BUNDLE / config), workflow_type=kind, **override)
    workflow.initialize()
    return workflow


@pytest.mark.integration
def test_training_bundle_has_every_typed_train_property(tmp_path):
    workflow = _workflow("train.json", "train", output_dir=str(tmp_path), synthetic_cases=10, synthetic_size=32,
                         img_size=[32, 32], epochs=1)
    assert workflow.check_properties() == []
    assert workflow.max_epochs == 1 and Path(workflow.bundle_root) == bundle_dir()


def test_inference_bundle_has_every_typed_infer_property(tmp_path):
    ckpt = random_checkpoint(tmp_path / "run" / "model.pt")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")  # a case to find (properties are read, nothing is segmented)
    workflow = _workflow("inference.json", "infer", ckpt=str(ckpt), input=str(tmp_path / "in"),
                         output_dir=str(tmp_path / "out"), device="cpu")
    assert workflow.check_properties() == []
    assert workflow.dataset_dir == tmp_path / "in"
    reference = torch.load(ckpt, weights_only=True)["model"]
    loaded = workflow.parser.get_parsed_content("network").state_dict()
    assert all(torch.equal(loaded[k].cpu(), v) for k, v in reference.items())


@pytest.mark.integration
def test_documented_ckpt_export_command_runs(tmp_path):
    """The command in bundles/masksup/README.md, as written there (paths filled in)."""
    ckpt = random_checkpoint(tmp_path / "run" / "model.pt")
    readme = (BUNDLE / "README.md").read_text()
    line = next(ln.strip() for ln in readme.splitlines() if ln.strip().startswith("python -m monai.bundle ckpt_export"))
    args = line.replace("RUN/model.pt", str(ckpt)).replace("model.ts", str(tmp_path / "model.ts")).split()[1:]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    reference = torch.load(ckpt, weights_only=True)["model"]
    state = scripted.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items())


def test_metadata_is_honest_and_a_license_ships():
    meta = json.loads((BUNDLE / "metadata.json").read_text())
    assert "optional_packages_version" not in meta  # deprecated key MONAI warns about on every run
    assert all(v != 0.0 for v in meta.get("eval_metrics", {}).values())  # no placeholder metric
    assert (BUNDLE / "LICENSE").is_file() and "Apache License" in (BUNDLE / "LICENSE").read_text()


def test_bundle_file_names_a_missing_file():
    from medseg_masksup.errors import UserError

    assert bundle_file("train.json").parent == bundle_dir()
    with pytest.raises(UserError, match="bundle file not found: .*nothing.json"):
        bundle_file("nothing.json")


def test_wheel_holds_the_bundle_files(tmp_path):
    """``pip wheel`` offline (no build isolation): every bundle file is package data of the wheel."""
    source = tmp_path / "src"  # a copy: building writes build/ and *.egg-info into the source tree
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "medseg_masksup", "data_scripts", "bundles"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PIP_NO_INDEX": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("medseg_masksup-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"medseg_masksup/bundles/masksup/{p.name}" for p in BUNDLE.iterdir() if p.is_file()}
    assert expected and expected <= names, sorted(expected - names)
    assert "medseg_masksup/tools/bench/runner.py" in names and "medseg_masksup/inference/options.py" in names
