"""Issue 20 item 3: a datalist mixing 8-bit and 16-bit pictures. Each picture is scaled from its own depth
(8-bit ones from 0..255, deeper ones from the recorded bit_depth) in training, validation, evaluation and
inference, and inference reports each input's real mapping."""

from __future__ import annotations

import numpy as np
import torch
from infer_fixtures import box_mask, bright_checkpoint, dice, picture
from PIL import Image

from medseg_masksup.data.datalist import bit_depth
from medseg_masksup.data.preprocessing import training_preprocessing, validation_preprocessing
from medseg_masksup.inference.folder import run_folder
from medseg_masksup.record import TrainingRecord

H, W = 48, 80
BOX = (slice(8, 24), slice(50, 70))


def _pair(tmp_path, name: str, dtype) -> tuple[str, str]:
    grey = picture(H, W, BOX, channels=1)
    Image.fromarray(grey if dtype == np.uint8 else grey.astype(np.uint16) * 257).save(tmp_path / name)  # one picture
    Image.fromarray(box_mask((H, W), BOX).astype(np.uint8) * 255).save(tmp_path / f"mask_{name}")
    return str(tmp_path / name), str(tmp_path / f"mask_{name}")


def test_mixed_datalist_records_the_deep_depth_and_says_each_picture_keeps_its_own(tmp_path, capsys):
    eight, _ = _pair(tmp_path, "a.png", np.uint8)
    sixteen, _ = _pair(tmp_path, "b.png", np.uint16)
    assert bit_depth([{"image": eight}, {"image": sixteen}, {"image": eight}]) == 16
    assert capsys.readouterr().err.splitlines() == [
        f"note: the images mix 2 8-bit pictures (e.g. {eight}) and 1 deeper ones (e.g. {sixteen}, 16-bit); each is "
        "scaled from its own depth: the 8-bit ones from 0..255, the others from 0..65535 (bit_depth 16)"]
    assert bit_depth([{"image": eight}]) == 8 and capsys.readouterr().err == ""


def test_training_and_validation_read_an_8_bit_picture_at_full_range_under_a_16_bit_record(tmp_path):
    record = TrainingRecord(img_size=[32, 32], bit_depth=16)
    outputs = {}
    for name, dtype in (("a.png", np.uint8), ("b.png", np.uint16)):
        image, label = _pair(tmp_path, name, dtype)
        for make in (training_preprocessing, validation_preprocessing):
            out = make(record)({"image": image, "label": label})["image"]
            outputs[name, make.__name__] = out
            assert float(out.min()) < -0.6 and float(out.max()) > 0.7, (name, make.__name__)  # 8-bit was ≈ -1 everywhere
    # the same picture stored at 8 and 16 bits reaches the network alike
    assert torch.allclose(outputs["a.png", "training_preprocessing"], outputs["b.png", "training_preprocessing"], atol=1e-5)


def test_inference_reports_each_inputs_own_mapping(tmp_path):
    saved = torch.load(bright_checkpoint(), weights_only=True)
    saved["training_record"]["bit_depth"] = 16
    ckpt = tmp_path / "model16.pt"
    torch.save(saved, ckpt)
    (tmp_path / "in").mkdir()
    _pair(tmp_path / "in", "a.png", np.uint8)
    _pair(tmp_path / "in", "b.png", np.uint16)
    for mask in (tmp_path / "in").glob("mask_*"):
        mask.unlink()
    report = run_folder(tmp_path / "in", tmp_path / "out", ckpt, progress=False, verbose=False)
    rows = {row["case"]: row for row in report.rows}
    assert rows["a"]["status"] == rows["b"]["status"] == "ok"
    assert rows["a"]["intensity_mapped_from"] is None  # read as 8-bit, not "mapped from 0x65535"
    assert rows["b"]["intensity_mapped_from"] == [0.0, 65535.0]
    for stem in ("a", "b"):
        found = np.array(Image.open(tmp_path / "out" / f"{stem}_mask.png")) > 0
        assert dice(found, box_mask((H, W), BOX)) > 0.75, stem  # the 8-bit input was a blank mask
