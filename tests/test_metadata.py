"""metadata.json against the MONAI bundle specification's mandatory keys.

``monai.bundle verify_metadata`` downloads its JSON schema, which is impossible offline; this test
checks the keys the specification (docs/source/mb_specification.rst) makes mandatory instead.
"""

import json

from monai.bundle import ConfigParser

from conftest import REPO, TRAIN_CONFIG

META = REPO / "bundles" / "masksup" / "metadata.json"
MANDATORY = ["version", "monai_version", "pytorch_version", "numpy_version", "required_packages_version", "task",
             "description", "authors", "copyright", "network_data_format"]
TENSOR_KEYS = ["type", "format", "modality", "num_channels", "spatial_shape", "dtype", "value_range", "is_patch_data",
               "channel_def"]


def test_metadata_has_the_mandatory_keys():
    meta = json.loads(META.read_text())
    missing = [k for k in MANDATORY if k not in meta]
    assert not missing, missing
    assert meta["version"] in meta["changelog"]
    fmt = meta["network_data_format"]
    assert set(fmt["inputs"]) == {"image"} and set(fmt["outputs"]) == {"pred"}  # MONAI Label / ckpt_export keys
    for spec in (fmt["inputs"]["image"], fmt["outputs"]["pred"]):
        assert not [k for k in TENSOR_KEYS if k not in spec]


def test_metadata_matches_the_training_defaults():
    meta = json.loads(META.read_text())
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    image = meta["network_data_format"]["inputs"]["image"]
    assert image["spatial_shape"] == parser["img_size"]
    assert image["num_channels"] == parser["network_def"]["in_channels"]
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == parser["network_def"]["out_channels"]
