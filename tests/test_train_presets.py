"""Presets are first-class (``medseg-masksup train --preset NAME``, found in the installed bundle) and a name that
is no setting is refused before any work, on both training routes, in one line naming the closest setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.bundle_files import bundle_dir, preset_file, preset_names
from medseg_masksup.commands.train import main
from medseg_masksup.training.settings import fitted_warmup
from medseg_masksup.errors import UserError

ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"OMP_NUM_THREADS": "2"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=ENV, timeout=600)


def _errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def test_the_presets_are_found_in_the_installed_bundle():
    assert preset_names() == ["cvc", "glas", "isic2018", "kvasir", "ph2"]
    assert preset_file("glas") == bundle_dir() / "presets" / "glas.json"
    with pytest.raises(UserError, match=r"unknown preset 'glass'; did you mean glas\? the presets are cvc, glas, "):
        preset_file("glass")


def test_an_unknown_preset_is_one_line_before_monai_starts(capsys):
    assert main(["--preset", "kvasr", "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "medseg-masksup train: error: unknown preset 'kvasr'; did you mean kvasir? the presets are "
        "cvc, glas, isic2018, kvasir, ph2")


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"epochs": 3}, (2, "note: the glas preset's warm-up of 5 epochs is clamped to 2 to fit --epochs 3 "
                            "(--warmup_epochs sets it)")),
        ({"epochs": 1}, (0, "note: the glas preset's warm-up of 5 epochs is clamped to 0 to fit --epochs 1 "
                            "(--warmup_epochs sets it)")),
        ({"epochs": 6}, None),  # fits
        ({}, None),  # the preset's own 100 epochs
        ({"epochs": 3, "warmup_epochs": 5}, None),  # given: the bundle's check judges it
    ],
)
def test_a_preset_warm_up_is_clamped_to_a_short_budget_only(overrides, expected):
    assert fitted_warmup("glas", {"warmup_epochs": 5, "epochs": 100}, overrides) == expected


@pytest.mark.integration
def test_names_that_are_no_setting_are_refused_on_the_bundle_route(tmp_path):
    out = tmp_path / "runs"
    proc = _run("-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG), "--output_dir", str(out),
                "--epoch", "1", "--netwrok", "unet", "--preset", "glas")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    folder = bundle_dir()
    assert _errors(proc) == [
        "error: unknown setting --epoch; did you mean --epochs?",
        "error: unknown setting --netwrok; did you mean --network or --network_size?",
        f"error: unknown setting --preset; a preset is a config file on this route: --config_file "
        f"\"['{folder / 'train.json'}','{folder / 'presets' / 'glas.json'}']\" (or medseg-masksup train --preset glas)",
    ]
    assert not out.exists()  # refused before any data, run folder or MLflow store


@pytest.mark.integration
def test_names_that_are_no_setting_and_a_given_bad_warm_up_are_refused_on_the_cli(tmp_path):
    out = tmp_path / "runs"
    proc = _run("-m", "medseg_masksup.cli", "train", "--preset", "glas", "--output_dir", str(out), "--epochs", "3",
                "--warmup_epochs", "5", "--epoch", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert _errors(proc) == ["error: unknown setting --epoch; did you mean --epochs?",
                             "error: --warmup_epochs must be an integer >= 0 and below --epochs, got 5"]
    assert "clamped" not in proc.stderr and not out.exists()


@pytest.mark.integration
def test_a_preset_with_a_short_budget_trains(tmp_path):
    """The README's real-data command with ``--epochs 3``: the GlaS preset's 5 warm-up epochs are clamped to 2."""
    from medseg_masksup.data.synthetic import ensure_synthetic_dataset

    datalist = ensure_synthetic_dataset(tmp_path / "data", n_cases=8, size=64)
    out = tmp_path / "runs"
    proc = _run("-m", "medseg_masksup.cli", "train", "--preset", "glas", "--datalist", str(datalist), "--epochs", "3",
                "--img_size", "[32,32]", "--batch_size", "2", "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert ("note: the glas preset's warm-up of 5 epochs is clamped to 2 to fit --epochs 3 (--warmup_epochs sets it)"
            in proc.stderr.splitlines())
    record = torch.load(next(out.glob("*/masksup/*/model.pt")), weights_only=True)["training_record"]
    assert (record["epochs"], record["warmup_epochs"]) == (3, 2)
    # the preset's recipe was merged: patch mode at half resolution, strong augmentation, Dice+BCE, cosine
    assert (record["spatial_mode"], record["scale"], record["augmentation"], record["stain_jitter"],
            record["seg_loss"], record["lr_schedule"]) == ("patch", 0.5, "strong", True, "dicece", "cosine")


def test_a_preset_goes_after_the_given_config_files(tmp_path, capsys):
    from medseg_masksup.commands.train import _config_files

    own = str(tmp_path / "my_train.json")
    glas = str(preset_file("glas"))
    assert _config_files(["--config_file", own, "--epochs", "2"], "glas") == [
        "--config_file", repr([own, glas]), "--epochs", "2", "--warmup_epochs", "1"]
    assert "clamped to 1 to fit --epochs 2" in capsys.readouterr().err
    assert _config_files([f"--config_file=['{own}']", "--lr", "0.1"], None) == ["--config_file", own, "--lr", "0.1"]
    assert main(["--epochs", "2", "--preset"]) == 2
    assert capsys.readouterr().err.strip() == "medseg-masksup train: error: --preset needs a value"
