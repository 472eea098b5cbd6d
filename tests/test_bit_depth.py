"""One intensity mapping for every bit depth: recorded at training, applied alike by inference and evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.data.datalist import bit_depth
from medseg_masksup.inference.predictor import Predictor, map_intensity
from medseg_masksup.io import read_case
from medseg_masksup.networks import build_network
from medseg_masksup.data.preprocessing import training_preprocessing
from medseg_masksup.record import TrainingRecord
from medseg_masksup.data.synthetic import ensure_synthetic_dataset


def _grey16(path, values: np.ndarray) -> str:
    Image.fromarray(values.astype(np.uint16)).save(path)
    return str(path)


@pytest.mark.parametrize("top, expected", [(200, 8), (4095, 12), (1000, 10), (65535, 16)])
def test_bit_depth_is_the_smallest_that_holds_the_data(tmp_path, top, expected):
    values = np.linspace(0, top, 64).reshape(8, 8)
    assert bit_depth([{"image": _grey16(tmp_path / "a.png", values)}]) == expected


def test_eight_bit_pictures_are_eight_bit(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(tmp_path / "a.png")
    assert bit_depth([{"image": str(tmp_path / "a.png")}]) == 8


def test_training_and_inference_prepare_a_12_bit_picture_identically(tmp_path):
    rng = np.random.default_rng(0)
    image = _grey16(tmp_path / "scan.png", rng.integers(0, 4096, (32, 32)))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "mask.png")
    record = TrainingRecord(img_size=[32, 32], bit_depth=12)
    trained = training_preprocessing(record)({"image": image, "label": str(tmp_path / "mask.png")})["image"]
    assert float(trained.min()) < -0.9 and float(trained.max()) > 0.9  # the full range is used, not [-1, -0.88]
    predictor = Predictor(build_network("unet", 2, 3, 1, "small"), record)
    mapped, source = map_intensity(np.asarray(read_case(image).image, dtype=np.float32), record)
    assert source == [0.0, 4095.0]
    inferred = predictor.transform({"image": torch.from_numpy(mapped)})["image"]
    assert torch.allclose(torch.as_tensor(inferred), torch.as_tensor(trained), atol=1e-5)


@pytest.mark.integration
def test_evaluate_on_12_bit_validation_items_equals_training_validation_dice(tmp_path):
    """Train on 12-bit-in-16-bit PNGs; evaluate's Dice on the validation items is training's validation Dice."""
    from medseg_masksup.inference.evaluation import evaluate_checkpoint

    source = ensure_synthetic_dataset(tmp_path / "synthetic", n_cases=12, size=32)
    listing = json.loads(source.read_text())
    for item in listing["training"]:
        path = source.parent / item["image"]
        grey = np.asarray(Image.open(path).convert("L"), dtype=np.uint16) * 16  # 0..4080: 12-bit data
        _grey16(path.with_name(path.stem + "_12bit.png"), grey)
        item["image"] = str(Path(item["image"]).with_name(path.stem + "_12bit.png"))
    listing["name"] = "twelve-bit"
    datalist = source.parent / "datalist12.json"
    datalist.write_text(json.dumps(listing))

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
                           "--datalist", str(datalist), "--output_dir", str(out), "--epochs", "1", "--img_size", "[32,32]",
                           "--batch_size", "2"], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(out.glob("twelve-bit/masksup/*"))
    summary = json.loads((run_dir / "summary.json").read_text())
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    assert saved["training_record"]["bit_depth"] == 12

    report = evaluate_checkpoint(run_dir / "model.pt", datalist, tmp_path / "eval", split="heldout", progress=False,
                                 verbose=False)
    assert report.summary["dice"]["n"] == len([i for i in listing["training"] if i["fold"] == 0])
    assert report.summary["dice"]["mean"] == pytest.approx(summary["best_val_dice"], abs=1e-4)
