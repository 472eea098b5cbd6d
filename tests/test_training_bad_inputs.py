"""Bad and unusual inputs on the training data path: clear errors naming the file, or correct handling."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from medseg_masksup.data.datalist import DatalistError, load_split
from medseg_masksup.data.preprocessing import training_preprocessing
from medseg_masksup.record import TrainingRecord

RECORD = TrainingRecord(img_size=[16, 16])


def _datalist(tmp_path, pairs):
    items = [{"image": img, "label": lab, "fold": i % 2} for i, (img, lab) in enumerate(pairs)]
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": items}))
    return path


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path.name


def _good(tmp_path, stem="ok", size=(20, 30)):
    rng = np.random.default_rng(0)
    img = _png(tmp_path / f"{stem}.png", rng.integers(0, 255, (*size, 3), dtype=np.uint8))
    lab = _png(tmp_path / f"{stem}_mask.png", (rng.random(size) > 0.5).astype(np.uint8) * 255)
    return img, lab


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "cannot read"),
        (lambda p: p.write_text("not an image"), "cannot read"),
    ],
    ids=["zero-byte", "truncated", "non-image"],
)
def test_unreadable_training_files_are_named(tmp_path, make, message):
    img, lab = _good(tmp_path)
    other_img, _ = _good(tmp_path, "other")
    make(tmp_path / "bad.png")
    datalist = _datalist(tmp_path, [(img, lab), (other_img, "bad.png")])
    with pytest.raises(DatalistError, match=re.escape(message)) as err:
        load_split(datalist)
    assert str(tmp_path / "bad.png") in str(err.value) and str(datalist) in str(err.value)


def test_truncated_jpeg_is_named_by_the_up_front_check(tmp_path):
    img, lab = _good(tmp_path)
    rng = np.random.default_rng(2)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "cut.jpg", quality=95)
    data = (tmp_path / "cut.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # header intact, half the scan data gone
    _png(tmp_path / "cut_mask.png", np.zeros((64, 64), np.uint8))
    datalist = _datalist(tmp_path, [(img, lab), ("cut.jpg", "cut_mask.png")])
    with pytest.raises(DatalistError) as err:
        load_split(datalist)
    assert f"cannot read {tmp_path / 'cut.jpg'} as an image" in str(err.value)


def test_size_mismatch_names_both_files(tmp_path):
    img, _ = _good(tmp_path, size=(20, 30))
    _, small = _good(tmp_path, "small", size=(10, 10))
    with pytest.raises(DatalistError) as err:
        load_split(_datalist(tmp_path, [(img, small), _good(tmp_path, "b")]))
    assert f"size mismatch: image {tmp_path / img} is 30x20 but mask {tmp_path / small} is 10x10" in str(err.value)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "CMYK"])
def test_every_picture_mode_becomes_three_channels_in_range(tmp_path, mode):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, (20, 30), dtype=np.uint16))
    elif mode == "P":
        image = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    else:
        image = rgb.convert(mode)
    name = "img.tif" if mode == "CMYK" else "img.png"
    image.save(tmp_path / name)
    _png(tmp_path / "mask.png", np.zeros((20, 30), np.uint8))
    record = TrainingRecord(img_size=[16, 16], bit_depth=16 if mode == "I;16" else 8)  # as training detects it
    out = training_preprocessing(record)({"image": str(tmp_path / name), "label": str(tmp_path / "mask.png")})
    assert out["image"].shape == (3, 16, 16) and out["image"].dtype == torch.float32
    assert -1.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0
    assert float(out["image"].std()) > 0.05  # real content, not a saturated or flat image
    if mode == "P":  # palette indices were turned into their colours, not read as grey levels
        expected = np.asarray(image.convert("RGB"), dtype=np.float32).mean()
        got = (out["image"].mean().item() + 1) * 127.5
        assert abs(got - expected) < 8


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(0, 63) | st.integers(192, 255), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_masks_without_mid_grey_binarize_to_above_threshold(tmp_path, values, seed):
    rng = np.random.default_rng(seed)
    mask = rng.choice(np.array(values, dtype=np.uint8), size=(16, 16))
    _png(tmp_path / "m.png", mask)
    _png(tmp_path / "i.png", np.zeros((16, 16, 3), np.uint8))
    out = training_preprocessing(RECORD)({"image": str(tmp_path / "i.png"), "label": str(tmp_path / "m.png")})
    label = out["label"].numpy()
    assert set(np.unique(label)) <= {0.0, 1.0}
    assert np.array_equal(label[0].T, (mask > 0).astype(np.float32))  # MONAI reads PNGs as (W, H)


def _gradient_mask_item(tmp_path):
    _png(tmp_path / "m.png", np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1)))  # 0..240, a grey ramp
    _png(tmp_path / "i.png", np.zeros((16, 16, 3), np.uint8))
    return {"image": str(tmp_path / "i.png"), "label": str(tmp_path / "m.png")}


def _root_cause(err: BaseException) -> BaseException:
    while err.__cause__ is not None:
        err = err.__cause__
    return err


def test_grey_level_mask_is_refused_naming_the_file_and_the_threshold(tmp_path):
    item = _gradient_mask_item(tmp_path)
    with pytest.raises(Exception) as err:  # MONAI wraps transform errors; the cause is ours
        training_preprocessing(RECORD)(item)
    cause = _root_cause(err.value)
    assert isinstance(cause, DatalistError)
    assert f"mask {tmp_path / 'm.png'} is not binary" in str(cause) and "--label_threshold 127" in str(cause)
    out = training_preprocessing(TrainingRecord(img_size=[16, 16], label_threshold=127))(item)  # the suggestion works
    assert 0 < float(out["label"].mean()) < 1


def test_rgb_jpeg_like_masks_use_the_first_channel(tmp_path):
    mask = np.zeros((16, 16, 3), np.uint8)
    mask[4:10, 2:8] = (250, 3, 1)  # foreground with compression-like noise in the other channels
    _png(tmp_path / "m.png", mask)
    _png(tmp_path / "i.png", np.zeros((16, 16, 3), np.uint8))
    out = training_preprocessing(TrainingRecord(img_size=[16, 16], label_threshold=127))(
        {"image": str(tmp_path / "i.png"), "label": str(tmp_path / "m.png")})
    assert out["label"].shape == (1, 16, 16) and out["label"].sum() == 36


def test_large_image_is_resized_to_the_training_size(tmp_path):
    _png(tmp_path / "big.png", np.full((1500, 2500, 3), 200, np.uint8))
    _png(tmp_path / "big_mask.png", np.full((1500, 2500), 255, np.uint8))
    out = training_preprocessing(RECORD)({"image": str(tmp_path / "big.png"), "label": str(tmp_path / "big_mask.png")})
    assert out["image"].shape == (3, 16, 16) and out["label"].shape == (1, 16, 16)
