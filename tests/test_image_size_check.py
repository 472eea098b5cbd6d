"""Pictures too small or too long and thin to train on are refused by the datalist check, naming the file."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.data.datalist import load_split
from medseg_masksup.data.image_size import MAX_ASPECT, MIN_SIDE, size_problem
from medseg_masksup.errors import DatalistError


@pytest.mark.parametrize(("width", "height"), [(775, 522), (32, 32), (MIN_SIDE, MIN_SIDE), (400, 20), (20, 400)])
def test_ordinary_pictures_pass(width, height):
    assert size_problem(width, height) is None


def test_tiny_and_absurdly_thin_pictures_are_named():
    assert size_problem(1, 1) == f"is 1x1 pixels: too small to segment (each side must be at least {MIN_SIDE} pixels)"
    assert size_problem(20000, 20) == (f"is 20000x20 pixels: an aspect ratio of 1000:1, beyond {MAX_ASPECT:.0f}:1 "
                                       "(squashed to the network's input it would be a smear; cut it into tiles first)")
    assert size_problem(int(MIN_SIDE * MAX_ASPECT) + 8, MIN_SIDE).startswith(f"is {int(MIN_SIDE * MAX_ASPECT) + 8}x8")


def _datalist(tmp_path, odd_size: tuple[int, int]):
    """Four ordinary cases for training, one validation case of ``odd_size`` (width, height)."""
    items = []
    for i, (width, height) in enumerate([(32, 32)] * 4 + [odd_size]):
        image, label = tmp_path / f"case{i}.png", tmp_path / f"case{i}_mask.png"
        Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(image)
        Image.fromarray(np.zeros((height, width), np.uint8)).save(label)
        items.append({"image": image.name, "label": label.name})
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"name": "odd", "training": items[:4], "validation": items[4:]}))
    return path, tmp_path / "case4.png"


@pytest.mark.parametrize("size", [(1, 1), (20000, 20)])
def test_the_datalist_check_refuses_them(tmp_path, size):
    datalist, odd = _datalist(tmp_path, size)
    with pytest.raises(DatalistError) as err:
        load_split(datalist)
    assert str(err.value) == f"datalist {datalist}: image {odd} {size_problem(*size)}"


@pytest.mark.integration
def test_training_on_a_1x1_image_stops_in_one_line_before_any_run(tmp_path):
    datalist, odd = _datalist(tmp_path, (1, 1))
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
                           "--datalist", str(datalist), "--output_dir", str(tmp_path / "runs"), "--epochs", "1"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: datalist {datalist}: image {odd} {size_problem(1, 1)}"], proc.stderr[-3000:]
    assert not (tmp_path / "runs").exists()
