"""Export: TorchScript (through monai.bundle ckpt_export) and ONNX of the bare backbone, parity with PyTorch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from infer_fixtures import random_checkpoint

from medseg_masksup.commands import export as export_cmd
from medseg_masksup.inference.export import TOLERANCES, compare, example_input, export_checkpoint
from medseg_masksup.checkpoint import load_network
from medseg_masksup.networks import build_network

ROOT = Path(__file__).resolve().parents[1]


def test_export_both_formats_match_pytorch_and_are_the_plain_backbone(tmp_path):
    import onnx
    import onnxruntime as ort
    from monai.data import load_net_with_metadata

    ckpt = random_checkpoint(tmp_path / "model.pt", img_size=[32, 48])
    report = export_checkpoint(ckpt, tmp_path / "export", verbose=False)
    assert report["exports"]["torchscript"]["ok"] and report["exports"]["onnx"]["ok"]
    assert json.loads((tmp_path / "export" / "export.json").read_text())["input_shape"] == ["batch", 3, 32, 48]
    network, record = load_network(ckpt)
    x = example_input(record, batch=3, seed=7)  # another batch size and inputs than the export used
    with torch.inference_mode():
        reference = network(x).numpy()

    scripted, meta, _ = load_net_with_metadata(str(tmp_path / "export" / "model.ts"))
    plain = build_network("unet", 2, 3, 1, "small").state_dict()
    assert list(scripted.state_dict()) == list(plain)  # exactly the backbone's parameters: no MaskSup parts
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == [32, 48]
    with torch.inference_mode():
        out = scripted(x)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 1, 32, 48)
    assert compare(reference, out.numpy(), **TOLERANCES["torchscript"])["ok"]

    model = onnx.load(str(tmp_path / "export" / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["logits"]
    session = ort.InferenceSession(str(tmp_path / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    result = session.run(None, {"image": x.numpy()})[0]
    assert compare(reference, result, **TOLERANCES["onnx"])["ok"]
    assert not [p for p in (tmp_path / "export").iterdir() if ".tmp" in p.name]


def test_compare_applies_the_stated_tolerance():
    ref = np.array([0.0, 10.0, -100.0])
    assert compare(ref, ref + [1e-4, 1e-4, 0.0], atol=1e-4, rtol=1e-4)["ok"]
    result = compare(ref, ref + [0.0, 0.0, 0.02], atol=1e-4, rtol=1e-4)  # 0.02 > 1e-4 + 1e-4·100
    assert not result["ok"] and result["max_abs_diff"] == pytest.approx(0.02)


def test_monai_bundle_ckpt_export_command(tmp_path):
    ckpt = random_checkpoint(tmp_path / "model.pt")
    cmd = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(tmp_path / "model.ts"),
           "--ckpt_file", str(ckpt), "--meta_file", "bundles/masksup/metadata.json",
           "--config_file", "bundles/masksup/inference.json", "--key_in_ckpt", "model", "--ckpt", str(ckpt)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.returncode == 0, done.stderr[-2000:]
    scripted = torch.jit.load(str(tmp_path / "model.ts"))
    network, record = load_network(ckpt)
    x = example_input(record)
    with torch.inference_mode():
        assert compare(network(x).numpy(), scripted(x).numpy(), **TOLERANCES["torchscript"])["ok"]


def test_export_command_errors(tmp_path, capsys, monkeypatch):
    assert export_cmd.main(["--ckpt", str(tmp_path / "none.pt"), "--output_dir", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.strip() == f"medseg-masksup export: error: checkpoint not found: {tmp_path / 'none.pt'}"
    ckpt = random_checkpoint(tmp_path / "model.pt")
    monkeypatch.setitem(TOLERANCES, "onnx", {"atol": -1.0, "rtol": 0.0})  # an impossible tolerance must fail the export
    assert export_cmd.main(["--ckpt", str(ckpt), "--output_dir", str(tmp_path / "e"), "--formats", "onnx"]) == 1
    err = capsys.readouterr().err
    assert f"error: onnx export of {ckpt} differs from PyTorch beyond tolerance; see {tmp_path / 'e' / 'export.json'}" in err
