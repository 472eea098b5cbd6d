import json
from dataclasses import fields

import numpy as np
import pytest
from monai.bundle import ConfigParser
from PIL import Image

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.record import TrainingRecord
from medseg_masksup.training import settings_doc
from medseg_masksup.training.bundle_settings import running_config
from medseg_masksup.training.checks import check_settings, config_problems
from medseg_masksup.training.settings import BY_NAME, RECORDED, SETTINGS, literal_defaults

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


# ---------------------------------------------------------------------------------------------------
# one declaration per setting: train.json, the TrainingRecord, the README table and the help follow it

#: TrainingRecord fields that training finds or fixes itself, not settings
NOT_SETTINGS = {"spatial_dims", "in_channels", "out_channels", "intensity_range", "normalised_range", "prob_threshold",
                "dataset", "dataset_fingerprint", "n_train", "n_val", "n_parameters", "mlflow_experiment",
                "mlflow_run_id", "versions", "format"}


def test_train_json_holds_every_declared_setting_with_its_declared_default():
    config = json.loads(TRAIN_CONFIG.read_text())
    assert {s.name: config.get(s.name, "<missing>") for s in SETTINGS} == {s.name: s.default for s in SETTINGS}


def test_the_record_keeps_exactly_the_recorded_settings():
    assert {f.name for f in fields(TrainingRecord)} == set(RECORDED) | NOT_SETTINGS
    assert not set(RECORDED) & NOT_SETTINGS


def test_the_declared_defaults_pass_their_own_checks():
    assert check_settings() == []
    assert all(BY_NAME[name].problem(value, literal_defaults()) is None for name, value in literal_defaults().items())


def test_the_readme_table_is_generated_from_the_declarations():
    readme = REPO / "bundles" / "masksup" / "README.md"
    assert settings_doc.main([str(readme), "--check"]) == 0, (
        "bundles/masksup/README.md's settings table is out of date: python -m medseg_masksup.training.settings_doc "
        "bundles/masksup/README.md")
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in readme.read_text()


def test_the_table_command_rewrites_only_the_table_and_check_changes_nothing(tmp_path, capsys):
    readme = tmp_path / "README.md"
    stale = f"# x\n\n{settings_doc.TABLE_START}\n| old |\n{settings_doc.TABLE_END}\n\nafter\n"
    readme.write_text(stale)
    assert settings_doc.main([str(readme), "--check"]) == 1
    assert "settings table is out of date" in capsys.readouterr().err and readme.read_text() == stale
    assert settings_doc.main([str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\n") and text.endswith(f"{settings_doc.TABLE_END}\n\nafter\n") and "| old |" not in text
    assert settings_doc.options_table() in text
    (tmp_path / "plain.md").write_text("no markers\n")
    assert settings_doc.main([str(tmp_path / "plain.md")]) == 2
    assert "markers are missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"epoch": 1}, "unknown setting --epoch; did you mean --epochs?"),
        ({"netwrok": "unet"}, "unknown setting --netwrok; did you mean --network or --network_size?"),
        ({"colour": 1}, "unknown setting --colour; see `medseg-masksup train --help` for the settings"),
        ({"concat_branches": "maybe"}, "--concat_branches must be true or false, got 'maybe'"),
        ({"weight_decay": -1}, "--weight_decay must be a number >= 0, got -1"),
        ({"run_tags": "x"}, "--run_tags must be a JSON object like {}, got 'x'"),
        ({"alpha": True}, "--alpha must be a number >= 0, got True"),
        ({"cache_rate": 1.5}, "--cache_rate must be a number in [0, 1], got 1.5"),
    ],
)
def test_unknown_names_and_declared_ranges_are_one_line_each(change, message):
    assert check_settings(**{**GOOD, **change}) == [message]


def test_a_bundle_config_refuses_keys_that_are_no_setting_nor_bundle_id():
    values = {**literal_defaults(), "epochs": 3}
    keys = ["_meta_", "imports", "epochs", "epoch", "train", "preset"]
    assert config_problems(values, keys, {"imports", "train"}, hint={"preset": "use a config file"}) == [
        "unknown setting --epoch; did you mean --epochs?", "unknown setting --preset; use a config file"]


@pytest.mark.parametrize("given, expected", [("false", False), ("True", True), (False, False), ("true", True)])
def test_bool_settings_given_as_words_reach_the_pipeline_as_bools(tmp_path, given, expected):
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 6, "synthetic_size": 32, "img_size": [32, 32],
                   "concat_branches": given, "stain_jitter": given})
    assert parser.get_parsed_content("settings")["concat_branches"] is expected
    assert parser.get_parsed_content("masksup_network").concat is expected
    record = parser.get_parsed_content("training_record")
    assert record.concat_branches is expected and record.stain_jitter is expected


def test_the_record_is_made_from_the_settings(tmp_path):
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 6, "synthetic_size": 32, "img_size": [32, 32],
                   "method": "context", "gamma": 0.5, "epochs": 7, "masked_share": 0.5})
    record = parser.get_parsed_content("training_record")
    assert (record.method, record.alpha, record.beta, record.gamma) == ("context", 1.0, 1.0, 0.0)  # context: γ = 0
    assert (record.epochs, record.masked_share, record.img_size, record.bit_depth) == (7, 0.5, [32, 32], 8)
    assert record.n_train + record.n_val == 6 and record.dataset == "synthetic-glands"


def test_running_config_is_only_for_bundle_expressions():
    with pytest.raises(RuntimeError, match="no ConfigParser is evaluating this call"):
        running_config()


def test_train_help_lists_every_setting_and_the_presets(capsys):
    from medseg_masksup.cli import main

    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for setting in SETTINGS:
        assert f"  --{setting.name}  (default " in out, setting.name
    assert "--preset NAME" in out and "cvc, glas, isic2018, kvasir, ph2" in out
