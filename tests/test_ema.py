"""EMA of the weights (``ema_decay``): the average itself, its wiring into the bundle, checkpoints and resume."""

from __future__ import annotations

import os
import subprocess
import sys

import mlflow
import pytest
import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.record import TrainingRecord
from medseg_masksup.training.checkpoints import TrainingCheckpoints
from medseg_masksup.training.checks import check_settings
from medseg_masksup.training.ema import WeightEMA, build_ema
from medseg_masksup.tracking.store import sqlite_uri

TINY = ["--img_size", "[32,32]", "--synthetic_cases", "10", "--synthetic_size", "32", "--batch_size", "4"]
# strong augmentation on: the random transforms' own generators are part of last.pt too (transform_rng), so a
# resumed run must match the uninterrupted one exactly, augmentation and EMA included
EXACT = [*TINY, "--augmentation", "strong", "--ema_decay", "0.9"]


def _tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Conv2d(2, 1, 1))


def _float_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items() if v.is_floating_point()}


def test_the_average_follows_the_ema_formula_after_every_step():
    net = _tiny_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    decay = 0.8

    def step(engine, batch):
        net.train()
        optimizer.zero_grad()
        net(batch).square().mean().backward()
        optimizer.step()

    trainer = Engine(step)
    ema = WeightEMA(net, decay)
    ema.attach(trainer)
    seen = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: seen.append(_float_state(net)))
    trainer.run([torch.randn(2, 1, 6, 6) for _ in range(5)], max_epochs=1)

    expected = dict(seen[0])  # the first update copies, then W_ema <- decay * W_ema + (1 - decay) * W
    for weights in seen[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    averaged = _float_state(ema.module)
    assert set(averaged) == set(expected) and any("running_mean" in k for k in averaged)  # BatchNorm stats too
    for key in expected:
        torch.testing.assert_close(averaged[key], expected[key])
    raw = _float_state(net)
    assert all(not torch.equal(averaged[k], raw[k]) for k in raw if k.endswith("weight"))
    assert ema.state_dict() == {"n_averaged": 5}


def test_decay_zero_builds_no_ema_and_out_of_range_is_refused():
    assert build_ema(_tiny_net(), 0) is None and build_ema(_tiny_net(), 0.0) is None
    for decay in (1.0, -0.5):
        with pytest.raises(ValueError, match=r"ema_decay must lie in \(0, 1\)"):
            WeightEMA(_tiny_net(), decay)


@pytest.mark.parametrize("decay", [1.0, 1.5, -0.1, "0.9", True, None])
def test_bad_decay_is_one_clear_line(decay):
    problems = check_settings(method="masksup", network="unet", network_size="small", img_size=[128, 128],
                              mask_kind="freeform", mask_ratio=[0.4, 0.6], alpha=1.0, beta=1.0, gamma=1.0,
                              seg_loss="bce", epochs=30, batch_size=4, lr=1e-4, ema_decay=decay)
    assert problems == [f"--ema_decay must be a number in [0, 1) (0: no EMA of the weights; typical 0.999), got {decay!r}"]


def test_records_without_the_key_read_as_no_ema():
    old = TrainingRecord().state_dict()
    del old["ema_decay"]
    assert TrainingRecord.from_dict(old).ema_decay == 0.0
    assert TrainingRecord(ema_decay=0.999).params()["ema_decay"] == "0.999"  # logged to MLflow with the rest


def _parsed(tmp_path, ema_decay) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config(str(TRAIN_CONFIG))
    parser.update({"output_dir": str(tmp_path), "synthetic_cases": 6, "synthetic_size": 32, "img_size": [32, 32],
                   "ema_decay": ema_decay})
    return parser


@pytest.mark.integration
def test_decay_zero_wires_the_bundle_exactly_as_without_ema(tmp_path):
    parser = _parsed(tmp_path, 0)
    assert parser.get_parsed_content("ema") is None
    assert parser.get_parsed_content("validate#evaluator#network") is parser.get_parsed_content("masksup_network")
    handlers = parser.get_parsed_content("train#trainer#train_handlers")
    assert handlers == parser.get_parsed_content("train#handlers") + [
        parser.get_parsed_content(f"train#{name}") for name in ("report", "mlflow", "checkpoints")]
    assert parser.get_parsed_content("train#checkpoints").ema is None


@pytest.mark.integration
def test_decay_on_validates_the_average_and_updates_it_every_step(tmp_path):
    parser = _parsed(tmp_path, 0.99)
    ema = parser.get_parsed_content("ema")
    assert isinstance(ema, WeightEMA) and ema.decay == 0.99
    assert ema.network is parser.get_parsed_content("masksup_network").backbone
    assert parser.get_parsed_content("validate#evaluator#network") is ema.module
    assert ema in parser.get_parsed_content("train#trainer#train_handlers")
    assert parser.get_parsed_content("train#checkpoints").ema is ema
    assert parser.get_parsed_content("training_record").ema_decay == 0.99


def test_resuming_an_ema_checkpoint_without_ema_continues_from_the_raw_weights(tmp_path):
    net, fresh = _tiny_net(), _tiny_net()
    ema = WeightEMA(net, 0.9)
    for _ in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)
        ema.update()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    validator = Engine(lambda e, b: None)
    validator.state.best_metric, validator.state.best_metric_epoch = 0.5, 1
    trainer = Engine(lambda e, b: None)
    trainer.state.epoch, trainer.state.epoch_length, trainer.state.max_epochs = 1, 3, 2
    TrainingCheckpoints(str(tmp_path), net, optimizer, validator, TrainingRecord(), ema=ema).save_last(trainer)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"raw_model", "ema"} <= set(state)
    assert all(torch.equal(state["model"][k], v) for k, v in ema.module.state_dict().items())
    assert all(torch.equal(state["raw_model"][k], v) for k, v in net.state_dict().items())

    TrainingCheckpoints(str(tmp_path), fresh, torch.optim.SGD(fresh.parameters(), lr=0.1), validator,
                        TrainingRecord(), resume_state=state).restore(trainer)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in net.state_dict().items())


def _bundle(out, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", str(TRAIN_CONFIG),
           "--output_dir", str(out), *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0 or not check, proc.stderr[-3000:]
    return proc


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.integration
@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_bundle_saves_the_average_and_resume_continues_exactly(tmp_path, workers):
    """With loader processes too (``workers`` 1, as on a GPU; opt-in: ``-m slow``): they are reseeded each
    epoch from the torch RNG that last.pt restores."""
    exact = [*EXACT, "--num_workers", str(workers)]
    _bundle(tmp_path / "whole", "--epochs", "2", *exact)
    (whole,) = (tmp_path / "whole").glob("synthetic-glands/masksup/*")
    _bundle(tmp_path / "split", "--epochs", "1", *exact)
    (split,) = (tmp_path / "split").glob("synthetic-glands/masksup/*")
    after_one = torch.load(split / "last.pt", weights_only=True)
    _bundle(tmp_path / "split", "--epochs", "2", *exact, "--resume", str(split))

    last, resumed = (torch.load(d / "last.pt", weights_only=True) for d in (whole, split))
    assert last["training_record"]["ema_decay"] == 0.9 and last["ema"] == {"n_averaged": 4}  # 2 epochs x 2 steps
    assert not _equal(last["model"], last["raw_model"])  # "model" is the average, not the raw weights
    for key in ("model", "raw_model"):
        assert _equal(resumed[key], last[key]), key
    assert resumed["ema"] == last["ema"]
    assert resumed["optimizer"]["state"][0]["step"] == last["optimizer"]["state"][0]["step"]

    best = torch.load(whole / "model.pt", weights_only=True)  # the average at the best validation epoch
    assert _equal(best["model"], (after_one if best["epoch"] == 1 else last)["model"])
    client = mlflow.MlflowClient(sqlite_uri(str(tmp_path / "whole" / "mlflow.db")))
    (run,) = client.search_runs([client.get_experiment_by_name("masksup-synthetic-glands").experiment_id])
    assert run.data.params["ema_decay"] == "0.9"


@pytest.mark.integration
def test_bundle_refuses_a_bad_decay_before_any_work(tmp_path):
    proc = _bundle(tmp_path, *TINY, "--ema_decay", "1.0", check=False)
    assert proc.returncode == 2
    assert "error: --ema_decay must be a number in [0, 1) (0: no EMA of the weights; typical 0.999), got 1.0" in proc.stderr
    assert not list(tmp_path.glob("*/*/*/last.pt"))
