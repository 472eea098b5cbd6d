"""Fixed-length epochs (``samples_per_epoch``): back-to-back shuffles, wired into the bundle, refused under torchrun."""

from __future__ import annotations

import collections

import pytest
from monai.bundle import ConfigParser

from medseg_masksup.bundle_files import bundle_file
from medseg_masksup.training.bundle import epoch_sampler
from medseg_masksup.training.checks import refuse_under_distributed


def test_every_item_is_drawn_equally_often():
    counts = collections.Counter(epoch_sampler(list(range(16)), 64))
    assert sum(counts.values()) == 64 and set(counts) == set(range(16)) and set(counts.values()) == {4}


def test_zero_means_one_ordinary_pass():
    assert epoch_sampler(list(range(16)), 0) is None


def test_the_bundle_draws_that_many_samples_per_epoch(tmp_path):
    parser = ConfigParser()
    parser.read_config(str(bundle_file("train.json")))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 10, "synthetic_size": 32, "img_size": [32, 32],
                   "batch_size": 4, "samples_per_epoch": 20, "val_fold": 0})
    loader = parser.get_parsed_content("train#dataloader")
    n_train = len(parser.get_parsed_content("train#dataset"))
    assert n_train < 20
    assert len(loader) == 5 and sum(batch["image"].shape[0] for batch in loader) == 20
    assert parser.get_parsed_content("training_record").samples_per_epoch == 20


def test_multi_process_training_refuses_it_in_one_line(capsys):
    refuse_under_distributed(0)
    with pytest.raises(SystemExit) as stop:
        refuse_under_distributed(64)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --samples_per_epoch works in single-process training only; under torchrun each epoch is one pass "
        "over the training set (drop --samples_per_epoch or raise --epochs)"]
