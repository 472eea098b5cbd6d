"""Patch mode: aspect kept, resized by ``scale``; validation and inference slide a window and score natively."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from monai.inferers import SimpleInferer, SlidingWindowInferer

from infer_fixtures import make_record, random_checkpoint
from medseg_masksup.checkpoint import load_ensemble
from medseg_masksup.checkpoint import load_network as load_checkpoint
from medseg_masksup.inference.options import InferenceOptions
from medseg_masksup.inference.predictor import Predictor, preprocessing
from medseg_masksup.errors import UserError
from medseg_masksup.data.preprocessing import image_transforms, make_inferer
from medseg_masksup.data.transforms import MatchSpatialSized
from conftest import TRAIN_CONFIG


def test_patch_mode_keeps_aspect_and_scales():
    record = make_record(spatial_mode="patch", scale=0.5, img_size=[32, 32])
    from monai.transforms import Compose

    out = Compose(image_transforms(record))({"image": torch.full((3, 100, 60), 255.0)})["image"]
    assert tuple(out.shape) == (3, 50, 30)
    assert float(out.max()) == pytest.approx(1.0)
    squashed = Compose(image_transforms(make_record(img_size=[32, 32])))({"image": torch.zeros((3, 100, 60))})["image"]
    assert tuple(squashed.shape) == (3, 32, 32)


def test_inferer_follows_the_record():
    assert isinstance(make_inferer(make_record()), SimpleInferer)
    inferer = make_inferer(make_record(spatial_mode="patch", img_size=[32, 32]))
    assert isinstance(inferer, SlidingWindowInferer) and list(inferer.roi_size) == [32, 32]


def test_match_spatial_size_resizes_predictions_to_the_label():
    d = {"pred": torch.ones((1, 10, 20)), "label": torch.zeros((1, 40, 80))}
    out = MatchSpatialSized("pred", reference_key="label")(d)
    assert tuple(out["pred"].shape) == (1, 40, 80) and torch.allclose(out["pred"], torch.ones((1, 40, 80)))


def test_predictor_auto_mode_slides_at_the_record_scale(tmp_path):
    ckpt = random_checkpoint(tmp_path / "p.pt", spatial_mode="patch", scale=0.5, img_size=[32, 32])
    network, record = load_checkpoint(ckpt)
    predictor = Predictor(network, record)
    assert predictor.mode == "sliding"
    image = np.random.default_rng(0).uniform(0, 255, (3, 90, 70)).astype(np.float32)
    mask, prob, _ = predictor.segment(image)
    assert mask.shape == prob.shape == (90, 70)
    # sliding mode keeps the scale transform, resize mode squashes to img_size
    assert tuple(preprocessing(record, "auto")({"image": torch.from_numpy(image)})["image"].shape) == (3, 45, 35)
    assert tuple(preprocessing(record, "resize")({"image": torch.from_numpy(image)})["image"].shape) == (3, 32, 32)


def test_ensemble_averages_probabilities(tmp_path):
    a = random_checkpoint(tmp_path / "a.pt", seed=1)
    b = random_checkpoint(tmp_path / "b.pt", seed=2)
    image = np.random.default_rng(1).uniform(0, 255, (3, 40, 40)).astype(np.float32)
    networks, record = load_ensemble([a, b])
    both = Predictor(networks, record).probabilities(image)
    single = [Predictor(load_checkpoint(p)[0], record).probabilities(image) for p in (a, b)]
    assert np.allclose(both, (single[0] + single[1]) / 2, atol=1e-5)
    assert not np.allclose(single[0], single[1])
    tta = Predictor(networks, record, InferenceOptions(tta=True)).probabilities(image)
    assert tta.shape == both.shape


def test_ensemble_refuses_checkpoints_with_other_preprocessing(tmp_path):
    a = random_checkpoint(tmp_path / "a.pt")
    b = random_checkpoint(tmp_path / "b.pt", spatial_mode="patch", img_size=[32, 32])
    with pytest.raises(UserError, match=r"b\.pt: cannot join an ensemble .*spatial_mode 'patch'"):
        load_ensemble([a, b])


@pytest.mark.integration
def test_validation_dice_equals_evaluate_dice_in_patch_mode(tmp_path):
    """The checkpoint training selects is scored by validation exactly as ``evaluate`` scores it (native size)."""
    from medseg_masksup.inference.evaluation import evaluate_checkpoint
    from medseg_masksup.data.synthetic import ensure_synthetic_dataset

    datalist = ensure_synthetic_dataset(tmp_path / "data", n_cases=10, size=48)
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
           "--datalist", str(datalist), "--output_dir", str(tmp_path / "runs"), "--epochs", "2", "--batch_size", "4",
           "--spatial_mode", "patch", "--scale", "0.75", "--img_size", "[24,24]", "--augmentation", "strong",
           "--lr_schedule", "cosine", "--warmup_epochs", "1", "--seg_loss", "dicece", "--method", "baseline"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    assert done.returncode == 0, done.stderr[-3000:]
    summary_path = next((tmp_path / "runs").glob("*/baseline/*/summary.json"))
    summary = json.loads(summary_path.read_text())
    report = evaluate_checkpoint(summary_path.parent / "model.pt", datalist, tmp_path / "eval", split="heldout",
                                 progress=False, verbose=False, device="cpu")
    assert report.summary["dice"]["n"] == 2
    assert report.summary["dice"]["mean"] == pytest.approx(summary["best_val_dice"], abs=1e-4)
    record = load_checkpoint(summary_path.parent / "model.pt")[1]
    assert (record.spatial_mode, record.scale, record.lr_schedule) == ("patch", 0.75, "cosine")
