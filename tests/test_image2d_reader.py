"""Issue 19, one reading stack: training loads pictures with the reader inference uses
(:class:`medseg_masksup.io.read_image2d.Image2DReader`), and gets the arrays it got from MONAI's ``PILReader``
before: values, dtype (the bit depth of each picture), the ``(C, W, H)`` axis order, metadata, for every
picture and mask format, through the whole training and validation preprocessing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import PILReader
from monai.transforms import Compose, LoadImaged
from PIL import Image

from medseg_masksup.data import image_check
from medseg_masksup.data import preprocessing as pp
from medseg_masksup.data.cache import cached_spatial_size
from medseg_masksup.data.transforms import FillNonFinited
from medseg_masksup.io import read_case
from medseg_masksup.io.intensity import standard_mode
from medseg_masksup.io.read_image2d import Image2DReader, image2d_loader
from medseg_masksup.record import TrainingRecord

H, W = 37, 53  # not square: a transposed read would show


def _pictures(folder: Path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    deep = rgb[..., 0].astype(np.float32) / 7
    deep[0, 0], deep[3, 5], deep[10, 2] = np.nan, np.inf, -np.inf
    transparent = Image.fromarray(rgb).quantize(8)
    pictures = {
        "rgb.png": Image.fromarray(rgb),
        "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., 1]])),
        "grey.png": Image.fromarray(rgb[..., 0]),
        "la.png": Image.fromarray(rgb[..., 0]).convert("LA"),
        "palette.png": Image.fromarray(rgb).quantize(16),
        "palette_alpha.png": transparent,
        "bilevel.png": Image.fromarray(rgb[..., 0] > 128),
        "deep16.png": Image.fromarray(rgb[..., 0].astype(np.uint16) * 257 // 3),
        "rgb.jpg": Image.fromarray(rgb),
        "grey.jpg": Image.fromarray(rgb[..., 1]),
        "rgb.bmp": Image.fromarray(rgb),
        "deep16.tif": Image.fromarray(rgb[..., 2].astype(np.uint16) * 16),
        "float_nan.tif": Image.fromarray(deep),
    }
    files = {}
    for name, img in pictures.items():
        img.save(folder / name, **({"transparency": 0} if name == "palette_alpha.png" else {}))
        files[name] = str(folder / name)
    return files


def _masks(folder: Path) -> dict[str, str]:
    box = np.zeros((H, W), np.uint8)
    box[5:20, 10:40] = 1
    ids = np.zeros((H, W), np.uint8)
    ids[5:20, 10:25], ids[5:20, 26:40], ids[25:30, 3:9] = 1, 2, 7
    palette = Image.fromarray(ids).convert("P")
    palette.putpalette([0, 0, 0, 0, 128, 0, 128, 0, 0] + [50] * 759)  # index 1 is green: red channel 0
    masks = {
        "mask255.png": Image.fromarray(box * 255),
        "mask_rgb.jpg": Image.fromarray(np.dstack([box * 255] * 3)),
        "instances.png": Image.fromarray(ids),
        "instances16.png": Image.fromarray(ids.astype(np.uint16) * 300),
        "mask_palette.png": palette,
    }
    files = {}
    for name, img in masks.items():
        img.save(folder / name)
        files[name] = str(folder / name)
    return files


#: training's loaders before issue 19 (MONAI's PILReader), the reference the new reader must match
def _old_loaders() -> list:
    return [LoadImaged("image", reader=PILReader(converter=standard_mode), dtype=None, image_only=True,
                       ensure_channel_first=True),
            LoadImaged("label", reader="PILReader", image_only=True, ensure_channel_first=True)]


def _same(new, old, what) -> None:
    assert new.dtype == old.dtype, what
    assert tuple(new.shape) == tuple(old.shape), what
    assert torch.equal(torch.nan_to_num(new.as_tensor().float(), 1e9), torch.nan_to_num(old.as_tensor().float(), 1e9)), what
    assert new.meta.keys() == old.meta.keys(), what
    for key in ("mode", "format", "width", "height", "filename_or_obj", "original_channel_dim"):
        assert str(new.meta[key]) == str(old.meta[key]), (what, key)


def test_training_loads_every_format_exactly_as_monai_pilreader_did(tmp_path):
    pictures, masks = _pictures(tmp_path), _masks(tmp_path)
    old_image, old_label = _old_loaders()
    new_image, new_label = image2d_loader("image"), image2d_loader("label", label=True)
    dtypes = {}
    for name, path in pictures.items():
        new = new_image({"image": path})["image"]
        _same(new, old_image({"image": path})["image"], name)
        assert tuple(new.shape[1:]) == (W, H), name  # MONAI's axis order: x (columns) first
        dtypes[name] = new.dtype
    # the stored dtype is kept: it decides, per picture, whether the values are scaled from bit_depth
    assert dtypes["rgb.png"] == dtypes["palette.png"] == dtypes["rgb.jpg"] == torch.uint8
    assert dtypes["deep16.png"] == dtypes["deep16.tif"] == torch.int32 and dtypes["float_nan.tif"] == torch.float32
    for name, path in {**pictures, **masks}.items():
        _same(new_label({"label": path})["label"], old_label({"label": path})["label"], name)
    # masks keep their stored values: palette indices (not colours), instance ids
    palette = new_label({"label": masks["mask_palette.png"]})["label"]
    assert sorted(torch.unique(palette).tolist()) == [0.0, 1.0, 2.0, 7.0] and palette.meta["mode"] == "P"


RECORDS = {
    "resize": TrainingRecord(img_size=[32, 32]),
    "patch": TrainingRecord(img_size=[64, 64], spatial_mode="patch", scale=0.5),
    "threshold": TrainingRecord(img_size=[32, 32], label_threshold=400),
    "bit_depth": TrainingRecord(img_size=[32, 32], bit_depth=12, in_channels=1),
}


@pytest.mark.integration
@pytest.mark.parametrize("record_name", sorted(RECORDS))
def test_training_and_validation_preprocessing_give_the_arrays_of_before(tmp_path, record_name):
    record = RECORDS[record_name]
    pictures, masks = _pictures(tmp_path), _masks(tmp_path)
    old_training = Compose([*_old_loaders(), *pp.training_preprocessing(record).transforms[2:]])
    old_validation = Compose([*_old_loaders(), *pp.validation_preprocessing(record).transforms[2:]])
    assert [type(t).__name__ for t in old_training.transforms[:3]] == ["LoadImaged", "LoadImaged", "CheckSameSized"]
    for (image, label) in zip(sorted(pictures), sorted(masks) * 3):
        item = {"image": pictures[image], "label": masks[label]}
        for new, old in ((pp.training_preprocessing(record), old_training),
                         (pp.validation_preprocessing(record), old_validation)):
            got, want = new(dict(item)), old(dict(item))
            for key in ("image", "label"):
                _same(got[key], want[key], (record_name, image, label, key))


def test_patch_mode_items_have_the_spatial_sizes_the_cache_estimate_assumes(tmp_path):
    record = RECORDS["patch"]
    item = {"image": _pictures(tmp_path)["rgb.png"], "label": _masks(tmp_path)["mask255.png"]}
    for make, training in ((pp.training_preprocessing, True), (pp.validation_preprocessing, False)):
        out = make(record)(item)
        image, label = cached_spatial_size(record, *image_check.picture_size(item["image"]), training=training)
        assert (list(out["image"].shape[1:]), list(out["label"].shape[1:])) == (image, label), make.__name__
    assert cached_spatial_size(record, W, H, training=False) == ([26, 18], [W, H])  # scale 0.5 of (W, H)


def test_inference_reads_each_picture_as_training_loads_it(tmp_path):
    for name, path in _pictures(tmp_path).items():
        case = read_case(path)
        loaded = image2d_loader("image")({"image": path})["image"]
        want = FillNonFinited("image")({"image": loaded.float()})["image"].numpy()
        assert case.image.dtype == np.float32 and np.array_equal(case.image, want), name
        assert case.stored_bits == (8 if loaded.dtype == torch.uint8 else 16 if "16" in name else 32), name


def test_datalist_check_counts_non_finite_values_of_a_float_tiff(tmp_path):
    path = _pictures(tmp_path)["float_nan.tif"]
    facts = image_check.image_facts(path)
    finite = np.asarray(Image.open(path), dtype=np.float32)
    assert (facts.nonfinite, facts.mode) == (3, "F")
    assert facts.top == pytest.approx(float(finite[np.isfinite(finite)].max()))


def test_the_reader_claims_the_picture_suffixes_only():
    reader = Image2DReader()
    assert reader.verify_suffix("a.PNG") and reader.verify_suffix(["a.tif", "b.jpeg"]) and reader.verify_suffix("c.bmp")
    assert not reader.verify_suffix("a.nii.gz") and not reader.verify_suffix(["a.png", "b.dcm"])
