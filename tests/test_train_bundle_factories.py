"""The factories train.json calls (medseg_masksup/training/bundle.py, method_parts.py), each on its own, and the
bundle's shape: it declares components and keeps its ``$`` expressions few."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from monai.transforms import Compose, Randomizable

from medseg_masksup.bundle_files import bundle_file
from medseg_masksup.data.cache import fit_cache_rate
from medseg_masksup.data.synthetic import ensure_synthetic_dataset
from medseg_masksup.errors import CheckpointError
from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.networks import build_network
from medseg_masksup.training import bundle as msc
from medseg_masksup.training.bundle_settings import BundleSettings
from medseg_masksup.training.method_parts import make_masker, method_loss, method_weights
from medseg_masksup.training.run_claim import in_use, release
from medseg_masksup.training.settings import literal_defaults
from medseg_masksup.tracking.store import sqlite_uri


def _settings(tmp_path: Path, **values) -> BundleSettings:
    base = {**literal_defaults(), "output_dir": str(tmp_path / "runs"), "synthetic_cases": 10, "synthetic_size": 32,
            "img_size": [32, 32], "amp": False}
    return BundleSettings({**base, **values}, tuple(base))


def _expressions(node) -> list[str]:
    if isinstance(node, str):
        return [node] if node.startswith("$") else []
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return [e for child in children for e in _expressions(child)]


def test_train_json_declares_components_with_few_expressions():
    """Issue 19: train.json wired the run through ~80 ``$`` expressions, 26 of them calls into the project."""
    expressions = _expressions(json.loads(bundle_file("train.json").read_text()))
    assert len(expressions) <= 30, "\n".join(expressions)
    calls = [e for e in expressions if "medseg_masksup." in e and not e.startswith("$import")]
    assert len(calls) <= 3, calls  # the declared defaults (bundle_root, tracking_uri, device) only


def test_run_context_resolves_the_synthetic_data_its_name_and_split(tmp_path):
    context = msc.run_context(_settings(tmp_path, val_fold=1))
    assert Path(context.datalist_file) == tmp_path / "runs" / "synthetic" / "datalist.json"
    assert (context.dataset_name, context.experiment_name) == ("synthetic-glands", "masksup-synthetic-glands")
    assert context.resume_dir == "" and context.method == "masksup" and context.output_dir == str(tmp_path / "runs")
    assert {item["fold"] for item in context.val_items} == {1}
    assert 1 not in {item["fold"] for item in context.train_items}
    assert context.datalists == {"training": context.train_items, "validation": context.val_items}


def test_run_context_takes_a_dataset_dir_and_refuses_one_without_a_datalist(tmp_path):
    datalist = ensure_synthetic_dataset(tmp_path / "data", n_cases=10, size=32)
    assert msc.run_context(_settings(tmp_path, dataset_dir=str(datalist.parent))).datalist_file == str(datalist)
    with pytest.raises(FileNotFoundError, match=r"--dataset_dir .*empty holds no datalist.json"):
        msc.run_context(_settings(tmp_path, dataset_dir=str(tmp_path / "empty")))


def test_run_context_finds_the_run_to_resume(tmp_path):
    with pytest.raises(CheckpointError, match="--resume auto: no unfinished run with a last.pt"):
        msc.run_context(_settings(tmp_path, resume="auto"))
    unfinished = tmp_path / "runs" / "synthetic-glands" / "masksup" / "20260101-000000"
    unfinished.mkdir(parents=True)
    (unfinished / "last.pt").write_bytes(b"")
    assert msc.run_context(_settings(tmp_path, resume="auto")).resume_dir == os.fspath(unfinished)


def test_run_dir_is_a_new_claimed_folder_or_the_resumed_one(tmp_path):
    context = msc.run_context(_settings(tmp_path))
    fresh = msc.run_dir(context)
    try:
        assert Path(fresh).parent == tmp_path / "runs" / "synthetic-glands" / "masksup" and in_use(fresh)
        second = msc.run_dir(context)
        assert second != fresh  # a second run never shares the folder
        release(second)
        (Path(fresh) / "last.pt").write_bytes(b"")
    finally:
        release(fresh)
    resumed = msc.RunContext(**{**vars(context), "resume_dir": fresh})
    assert msc.run_dir(resumed) == fresh and in_use(fresh)
    release(fresh)


def test_training_record_is_made_from_the_settings_and_the_context(tmp_path):
    settings = _settings(tmp_path, method="context", gamma=0.7)
    context = msc.run_context(settings)
    record = msc.training_record(settings, context, build_network("unet"))
    assert (record.dataset, record.mlflow_experiment) == (context.dataset_name, context.experiment_name)
    assert (record.n_train, record.n_val) == (len(context.train_items), len(context.val_items))
    assert (record.method, record.gamma) == ("context", 0.0)  # the method's effective weights


def test_masksup_network_wraps_the_backbone_with_the_settings(tmp_path):
    backbone, masker = build_network("unet"), MaskGenerator("patch", 0.5, seed=0)
    network = msc.masksup_network(_settings(tmp_path, concat_branches=True, masked_share=0.5), backbone, masker, "cpu")
    assert network.backbone is backbone and network.masker is masker
    assert network.concat is True and network.masked_share == 0.5
    assert next(network.parameters()).device == torch.device("cpu")


def test_amp_kwargs_follow_the_amp_setting(tmp_path):
    assert msc.amp_kwargs(_settings(tmp_path, amp=False), torch.device("cpu")) == {}
    assert msc.amp_kwargs(_settings(tmp_path, amp=True), "cpu") == {"dtype": torch.bfloat16}


def test_training_transform_is_preprocessing_then_augmentation_in_one_flat_compose(tmp_path):
    settings = _settings(tmp_path, augmentation="strong", stain_jitter=True)
    context = msc.run_context(settings)
    record = msc.training_record(settings, context, build_network("unet"))
    transform = msc.training_transform(settings, record)
    assert isinstance(transform, Compose) and not any(isinstance(t, Compose) for t in transform.transforms)
    names = [type(t).__name__ for t in transform.transforms]
    assert names[0] == "LoadImaged" and "RandStainJitterd" in names
    first_random = next(i for i, t in enumerate(transform.transforms) if isinstance(t, Randomizable))
    assert first_random > 0  # the cache keeps the preprocessing before it
    plain = msc.training_transform(_settings(tmp_path, augmentation="strong"), record)
    assert "RandStainJitterd" not in [type(t).__name__ for t in plain.transforms]


def test_fitted_cache_rate_fits_the_context_s_split(tmp_path):
    settings = _settings(tmp_path, cache_rate=0.5)
    context = msc.run_context(settings)
    record = msc.training_record(settings, context, build_network("unet"))
    assert msc.fitted_cache_rate(settings, context, record) == 0.5  # 10 tiny images fit
    assert fit_cache_rate(context.train_items, context.val_items, record, 0.5, available=1) == 0.0  # what it asks


@pytest.mark.integration
def test_mlflow_handler_files_the_run_under_the_context_and_resumes_its_run(tmp_path):
    settings = _settings(tmp_path)
    context = msc.run_context(settings)
    record = msc.training_record(settings, context, build_network("unet"))
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    handler = msc.mlflow_handler(context, record, None, tracking_uri=uri, run_name="masksup", iteration_log=False)
    assert (handler.experiment_name, handler.run_name, handler.run_id) == (context.experiment_name, "masksup", None)
    assert handler.datalists == context.datalists and handler.datalist_source == context.datalist_file
    assert handler.dataset_name == context.dataset_name and handler.experiment_param == record.params()
    assert handler.iteration_log is False
    resumed = msc.mlflow_handler(context, record, {"mlflow_run_id": "abc"}, tracking_uri=uri, run_name="masksup")
    assert resumed.run_id == "abc"


@pytest.mark.parametrize("method, weights", [("masksup", (1.0, 0.5, 0.25)), ("context", (1.0, 0.5, 0.0)),
                                             ("baseline", (1.0, 0.0, 0.0))])
def test_method_loss_carries_the_weights_the_method_switches_on(method, weights):
    loss = method_loss(method, 1, 0.5, 0.25, seg_loss="dicece", consistency="to_clean")
    assert (loss.alpha, loss.beta, loss.gamma) == weights == method_weights(method, 1, 0.5, 0.25)
    assert loss.consistency == "to_clean"
    assert (make_masker(method, "patch", 0.5, 0) is None) == (method == "baseline")


def test_an_unknown_method_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown method 'ssl'; choose one of masksup, context, baseline"):
        method_loss("ssl", 1, 1, 1)


def test_the_bundle_builds_its_trainer_and_an_id_override_reaches_it(tmp_path):
    """``--train#trainer#max_epochs`` (an id, not a setting) still sets the trainer's length; the lower training
    loss is the better one; validation shares the training run's store and experiment."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(bundle_file("train.json")))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 10, "synthetic_size": 32, "img_size": [32, 32],
                   "device": "cpu", "train#trainer#max_epochs": 2})
    trainer = parser.get_parsed_content("train#trainer")
    assert trainer.state.max_epochs == 2 and parser.get_parsed_content("epochs") == 30
    assert trainer.metric_cmp_fn(0.1, 0.2) and not trainer.metric_cmp_fn(0.2, 0.1)
    assert parser.get_parsed_content("train#dataset").transform is parser.get_parsed_content("train#preprocessing")
    validation_mlflow = parser.get_parsed_content("validate#handlers")[1]
    mlflow = parser.get_parsed_content("train#mlflow")
    assert validation_mlflow.share_with is mlflow and validation_mlflow.experiment_name == "masksup-synthetic-glands"
    assert validation_mlflow.given_tracking_uri == mlflow.given_tracking_uri == sqlite_uri(str(tmp_path / "mlflow.db"))
    release(parser.get_parsed_content("run_dir"))
