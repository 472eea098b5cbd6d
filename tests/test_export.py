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
from medseg_masksup.inference.export import TOLERANCES, compare, example_input, export_checkpoint, onnx_runner, preprocessing_spec
from medseg_masksup.checkpoint import load_network
from medseg_masksup.networks import build_network

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
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
    assert meta["preprocessing"] == json.loads((tmp_path / "export" / "export.json").read_text())["preprocessing"]
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_export_command_errors(tmp_path, capsys, monkeypatch):
    assert export_cmd.main(["--ckpt", str(tmp_path / "none.pt"), "--output_dir", str(tmp_path / "e")]) == 2
    assert capsys.readouterr().err.strip() == f"medseg-masksup export: error: checkpoint not found: {tmp_path / 'none.pt'}"
    ckpt = random_checkpoint(tmp_path / "model.pt")
    monkeypatch.setitem(TOLERANCES, "onnx", {"atol": -1.0, "rtol": 0.0})  # an impossible tolerance must fail the export
    assert export_cmd.main(["--ckpt", str(ckpt), "--output_dir", str(tmp_path / "e"), "--formats", "onnx"]) == 1
    err = capsys.readouterr().err
    assert f"error: onnx export of {ckpt} differs from PyTorch beyond tolerance; see {tmp_path / 'e' / 'export.json'}" in err


def _follow(spec: dict, image: np.ndarray, run) -> np.ndarray:
    """What an ONNX/TorchScript user does with export.json's ``preprocessing`` alone: foreground probability."""
    import torch.nn.functional as F
    from monai.inferers import sliding_window_inference

    x = torch.from_numpy(image.astype(np.float32))
    x = (x.repeat(spec["in_channels"], 1, 1) if x.shape[0] == 1 else x[: spec["in_channels"]]) * spec["bit_scale"]
    if spec["spatial_mode"] == "resize":
        x = F.interpolate(x[None], size=spec["img_size"], mode=spec["interpolation"])[0]
    elif spec["scale"] != 1.0:
        x = F.interpolate(x[None], scale_factor=spec["scale"], mode=spec["interpolation"], recompute_scale_factor=True)[0]
    (lo, hi), (b0, b1) = spec["intensity_range"], spec["normalised_range"]
    x = (x.clamp(lo, hi) - lo) / (hi - lo) * (b1 - b0) + b0
    window = spec["sliding_window"]
    logits = (sliding_window_inference(x[None], window["roi_size"], 1, run, overlap=window["overlap"], mode=window["blend_mode"])
              if window else run(x[None]))
    prob = F.interpolate(torch.sigmoid(logits), size=image.shape[1:], mode=spec["probability_to_input_grid"], align_corners=False)
    return prob[0, 0].numpy()


@pytest.mark.parametrize("settings", [{}, {"spatial_mode": "patch", "scale": 0.5, "bit_depth": 16}, {"spatial_mode": "patch"}],
                         ids=["resize", "patch-scale-16bit", "patch-native"])
@pytest.mark.integration
def test_export_json_preprocessing_alone_reproduces_infer(settings, tmp_path):
    """Following export.json's preprocessing with the plain network gives infer's probabilities (any spatial mode)."""
    from medseg_masksup.inference.options import InferenceOptions
    from medseg_masksup.inference.predictor import Predictor

    ckpt = random_checkpoint(tmp_path / "model.pt", **settings)
    network, record = load_network(ckpt)
    spec = preprocessing_spec(record)
    assert (spec["spatial_mode"], spec["scale"], spec["img_size"], spec["bit_depth"]) == (
        record.spatial_mode, record.scale, record.img_size, record.bit_depth)
    assert (spec["sliding_window"] is not None) == (record.spatial_mode == "patch")
    top = 2 ** record.bit_depth - 1
    image = np.random.default_rng(0).integers(0, top, (1, 70, 90)).astype(np.uint16 if top > 255 else np.uint8)
    _, expected, _ = Predictor(network, record, InferenceOptions(progress=False)).segment(image)
    with torch.inference_mode():
        followed = _follow(json.loads(json.dumps(spec)), image, network)
    np.testing.assert_allclose(followed, expected, atol=1e-5)


@pytest.mark.integration
def test_onnx_user_following_export_json_gets_infer_s_probabilities(tmp_path):
    """The exported ONNX file, preprocessed as export.json says (patch mode: scale and sliding window)."""
    from medseg_masksup.inference.options import InferenceOptions
    from medseg_masksup.inference.predictor import Predictor

    ckpt = random_checkpoint(tmp_path / "model.pt", spatial_mode="patch", scale=0.5)
    export_checkpoint(ckpt, tmp_path / "export", formats=["onnx"], verbose=False)
    spec = json.loads((tmp_path / "export" / "export.json").read_text())["preprocessing"]
    assert spec["sliding_window"] == {"roi_size": [32, 32], "overlap": 0.25, "blend_mode": "gaussian",
                                      "padding": "constant 0 (images smaller than a window)"}
    run = onnx_runner(tmp_path / "export" / "model.onnx")
    image = np.random.default_rng(1).integers(0, 255, (3, 70, 90)).astype(np.uint8)
    network, record = load_network(ckpt)
    _, expected, _ = Predictor(network, record, InferenceOptions(progress=False)).segment(image)
    followed = _follow(spec, image, lambda x: torch.from_numpy(run(x.contiguous())))
    np.testing.assert_allclose(followed, expected, atol=1e-4)


@pytest.mark.integration
def test_without_the_export_extra_torchscript_is_written_and_one_line_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as in a plain wheel install: import onnx fails
    ckpt = random_checkpoint(tmp_path / "model.pt")
    out = tmp_path / "e"
    assert export_cmd.main(["--ckpt", str(ckpt), "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f'medseg-masksup export: error: onnx export needs onnx (not installed): install the export extra, '
                   f'pip install "medseg-masksup[export]"; torchscript and export.json were written to {out}')
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.ts"]
    report = json.loads((out / "export.json").read_text())
    assert report["exports"]["torchscript"]["ok"] and "medseg-masksup[export]" in report["not_written"]["onnx"]

    assert export_cmd.main(["--ckpt", str(ckpt), "--output_dir", str(tmp_path / "f"), "--formats", "onnx"]) == 2
    assert capsys.readouterr().err.strip().endswith('pip install "medseg-masksup[export]"; nothing was written')
    assert not (tmp_path / "f").exists()
