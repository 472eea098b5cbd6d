"""The per-case predictor: training preprocessing from the record, TTA, sliding window, postprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from infer_fixtures import make_record, random_checkpoint
from torch import nn

from medseg_masksup.checkpoint import CheckpointError, load_network, network_from_checkpoint, training_run_id
from medseg_masksup.inference.options import InferenceOptions
from medseg_masksup.inference.predictor import Predictor, map_intensity, preprocessing
from medseg_masksup.io import UserError
from medseg_masksup.data.preprocessing import image_transforms


class Spy(nn.Module):
    """Returns channel 0 of its input as the logit (flip-equivariant) and remembers input shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return x[:, :1]


class Ramp(nn.Module):
    """A fixed asymmetric logit map whatever the input (not flip-equivariant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        ramp = torch.linspace(-3, 3, h)[:, None] + 2 * torch.linspace(-1, 1, w)[None, :] ** 3
        return ramp.expand(x.shape[0], 1, h, w)


def test_network_sees_exactly_the_training_preprocessing():
    record = make_record(img_size=[24, 40], in_channels=3)
    image = np.random.default_rng(0).uniform(0, 255, (1, 50, 30)).astype(np.float32)
    spy = Spy()
    Predictor(spy, record).probabilities(image)
    assert spy.shapes == [(1, 3, 24, 40)]  # img_size and channels from the record
    from monai.transforms import Compose

    expected = Compose(image_transforms(record))({"image": torch.from_numpy(image)})["image"]
    actual = preprocessing(record)({"image": torch.from_numpy(image)})["image"]
    torch.testing.assert_close(torch.as_tensor(actual), torch.as_tensor(expected), rtol=0, atol=0)


def test_probabilities_come_back_on_the_input_grid():
    record = make_record()
    image = np.zeros((3, 50, 30), np.float32)
    image[:, 10:20, 5:15] = 255
    prob = Predictor(Spy(), record).probabilities(image)
    assert prob.shape == (50, 30)
    # identity network: probability = sigmoid(normalised intensity): high on the square, low elsewhere
    assert prob[12:18, 7:13].min() > 0.7 and prob[30:, 20:].max() < 0.3


def test_tta_undoes_each_flip():
    record = make_record()
    image = np.random.default_rng(1).uniform(0, 255, (3, 32, 32)).astype(np.float32)
    plain = Predictor(Spy(), record).probabilities(image)
    tta = Predictor(Spy(), record, InferenceOptions(tta=True)).probabilities(image)
    np.testing.assert_allclose(tta, plain, atol=1e-6)  # an equivariant network is unchanged by TTA
    ramp = Predictor(Ramp(), record, InferenceOptions(tta=True)).probabilities(image)
    np.testing.assert_allclose(ramp, ramp[::-1, :], atol=1e-6)  # a fixed map becomes flip-symmetric
    np.testing.assert_allclose(ramp, ramp[:, ::-1], atol=1e-6)


def test_sliding_window_runs_at_native_resolution():
    record = make_record(img_size=[16, 16])
    image = np.random.default_rng(2).uniform(0, 255, (3, 70, 45)).astype(np.float32)
    spy = Spy()
    prob = Predictor(spy, record, InferenceOptions(mode="sliding", batch_size=4)).probabilities(image)
    assert prob.shape == (70, 45) and all(s[2:] == (16, 16) for s in spy.shapes)
    expected = torch.sigmoid(torch.from_numpy(image[0] / 127.5 - 1)).numpy()  # no resize happened
    np.testing.assert_allclose(prob, expected, atol=1e-5)


def test_volume_is_segmented_slice_by_slice_in_batches():
    record = make_record()
    volume = np.zeros((1, 20, 30, 5), np.float32)
    volume[0, 5:10, 5:10, 3] = 255
    spy = Spy()
    prob = Predictor(spy, record, InferenceOptions(batch_size=2)).probabilities(volume)
    assert prob.shape == (20, 30, 5) and [s[0] for s in spy.shapes] == [2, 2, 1]
    assert prob[6:9, 6:9, 3].min() > 0.7 and prob[..., [0, 1, 2, 4]].max() < 0.3


def test_postprocessing_keeps_largest_and_fills_holes():
    record = make_record()
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # a hole
    mask[15:18, 15:18] = True  # a smaller blob
    kept = Predictor(Spy(), record, InferenceOptions(keep_largest=True)).postprocess(mask)
    assert not kept[15:18, 15:18].any() and not kept[5:8, 5:8].any() and kept[2:12, 2].all()
    both = Predictor(Spy(), record, InferenceOptions(keep_largest=True, fill_holes=True)).postprocess(mask)
    assert both[2:12, 2:12].all() and both.sum() == 100


def test_threshold_defaults_to_the_record_and_can_be_set():
    record = make_record(prob_threshold=0.7)
    assert Predictor(Spy(), record).threshold == 0.7
    assert Predictor(Spy(), record, InferenceOptions(threshold=0.3)).threshold == 0.3


def test_intensity_mapping():
    record = make_record()
    eight_bit = np.array([[[0.0, 128.0, 255.0]]], np.float32)
    same, mapped = map_intensity(eight_bit, record)
    assert mapped is None and same is eight_bit  # inputs like training's are left exactly as they are
    ct = np.array([[[-1000.0, 0.0, 3000.0]]], np.float32)
    out, mapped = map_intensity(ct, record)
    assert mapped == [-1000.0, 3000.0]
    np.testing.assert_allclose(out, [[[0.0, 63.75, 255.0]]])
    out, mapped = map_intensity(ct, record, window=(-100, 300))
    np.testing.assert_allclose(out, [[[-573.75, 63.75, 1976.25]]])  # clipped later by the training preprocessing
    with pytest.raises(UserError, match=r"intensity_window must be two numbers low < high, got \[5, 1\]"):
        InferenceOptions(intensity_window=[5, 1])
    with pytest.raises(UserError, match="unknown mode 'tiles'; choose one of auto, resize, sliding"):
        InferenceOptions(mode="tiles")


def test_checkpoint_round_trip_and_record_checks(tmp_path):
    path = random_checkpoint(tmp_path / "run" / "model.pt", img_size=[16, 24])
    network, record = load_network(tmp_path / "run")  # a run folder works too
    assert record.img_size == [16, 24] and not network.training
    reference = torch.load(path, weights_only=True)["model"]
    for key, value in network_from_checkpoint(path).state_dict().items():
        torch.testing.assert_close(value, reference[key])
    ckpt = torch.load(path, weights_only=True)
    del ckpt["training_record"]["img_size"]
    torch.save(ckpt, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt: training record lacks img_size; cannot rebuild the preprocessing"):
        load_network(tmp_path / "partial.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["training_record"]["out_channels"] = 2
    torch.save(ckpt, tmp_path / "multi.pt")
    with pytest.raises(CheckpointError, match=r"multi\.pt: 2 output channels; binary segmentation needs 1"):
        load_network(tmp_path / "multi.pt")


def test_training_run_id_falls_back_to_the_run_folder(tmp_path):
    import json

    path = random_checkpoint(tmp_path / "model.pt")
    _, record = load_network(path)
    assert training_run_id(path, record) == ""
    (tmp_path / "training_record.json").write_text(json.dumps({"mlflow_run_id": "abc123"}))
    assert training_run_id(path, record) == "abc123"
    record.mlflow_run_id = "fromrecord"
    assert training_run_id(path, record) == "fromrecord"
