import json

import numpy as np
import pytest
from PIL import Image

from medseg_masksup.training.checks import check_settings

GOOD = dict(method="masksup", network="unet", network_size="small", img_size=[128, 128], mask_kind="freeform",
            mask_ratio=[0.4, 0.6], alpha=1.0, beta=1.0, gamma=1.0, seg_loss="bce", epochs=30, batch_size=4, lr=1e-4)


def test_defaults_are_fine():
    assert check_settings(**GOOD) == []
    assert check_settings(**GOOD, spatial_mode="patch", scale=0.5, augmentation="strong", lr_schedule="cosine",
                          warmup_epochs=5, bit_depth=12, mask_warmup_epochs=10) == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"method": "ssl"}, "--method 'ssl' is not known; choose one of masksup, context, baseline"),
        ({"network": "resnet"}, "--network 'resnet' is not known; choose one of unet, swinunetr, unetpp, attentionunet"),
        ({"mask_kind": "dots"}, "--mask_kind 'dots' is not known; choose one of freeform, patch, block"),
        ({"mask_ratio": 1.0}, "--mask_ratio must lie in [0, 1) with min <= max, got 1.0"),
        ({"mask_ratio": [0.6, 0.4]}, "--mask_ratio must lie in [0, 1) with min <= max, got [0.6, 0.4]"),
        ({"mask_ratio": "half"}, "--mask_ratio must be a number or [min, max] in [0, 1), got 'half'"),
        ({"gamma": -0.5}, "--gamma must be a number >= 0, got -0.5"),
        ({"epochs": 0}, "--epochs must be a positive integer, got 0"),
        ({"lr": 0}, "--lr must be a positive number, got 0"),
        ({"img_size": [100, 128], "network": "swinunetr"},
         '--img_size [100, 128] does not suit swinunetr (small): each side must be a multiple of 32; try --img_size "[96,128]"'),
        ({"img_size": [128]}, "--img_size must be two positive integers like [128,128], got [128]"),
        ({"datalist": "/nowhere/datalist.json"}, "--datalist /nowhere/datalist.json does not exist"),
        ({"dataset_dir": "/nowhere"}, "--dataset_dir /nowhere does not exist"),
        ({"spatial_mode": "tiles"}, "--spatial_mode 'tiles' is not known; choose one of resize, patch"),
        ({"augmentation": "heavy"}, "--augmentation 'heavy' is not known; choose one of none, light, strong"),
        ({"lr_schedule": "step"}, "--lr_schedule 'step' is not known; choose one of constant, cosine, poly"),
        ({"scale": 0}, "--scale must be a number in (0, 4] (1.0 = native pixels), got 0"),
        ({"warmup_epochs": 30}, "--warmup_epochs must be an integer >= 0 and below --epochs, got 30"),
        ({"bit_depth": 9}, "--bit_depth must be auto or one of 8, 10, 12, 14, 16, got 9"),
        ({"mask_warmup_epochs": -1}, "--mask_warmup_epochs must be an integer >= 0, got -1"),
        ({"samples_per_epoch": -4}, "--samples_per_epoch must be an integer >= 0 (0: one pass over the training set), got -4"),
        ({"mask_warmup_epochs": 2.5}, "--mask_warmup_epochs must be an integer >= 0, got 2.5"),
    ],
)
def test_each_problem_is_one_line_saying_what_to_change(change, message):
    assert check_settings(**{**GOOD, **change}) == [message]


def test_datalist_entries_pointing_at_missing_files(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    items = [{"image": "a.png", "label": "missing_mask.png", "fold": 0}, {"image": "a.png", "label": "a.png", "fold": 1}]
    datalist = tmp_path / "datalist.json"
    datalist.write_text(json.dumps({"training": items}))
    problems = check_settings(**{**GOOD, "datalist": str(datalist)})
    assert problems == [f"datalist {datalist}: label file not found: {tmp_path / 'missing_mask.png'}"]


def test_dataset_dir_without_datalist(tmp_path):
    assert check_settings(**{**GOOD, "dataset_dir": str(tmp_path)}) == [
        f"--dataset_dir {tmp_path} holds no datalist.json; prepare it with `medseg-masksup prepare`"
    ]
