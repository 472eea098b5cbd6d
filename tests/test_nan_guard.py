"""A NaN loss stops training with a clear message and leaves the last good checkpoint loadable."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader
from monai.engines import SupervisedEvaluator
from monai.handlers import MeanDice

from medseg_masksup.method.loss import MaskSupLoss
from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.record import TrainingRecord
from medseg_masksup.training.checkpoints import TrainingCheckpoints
from medseg_masksup.training.run import run_training
from medseg_masksup.method.trainer import MaskSupTrainer, NonFiniteLossError
from medseg_masksup.method.wrapper import MaskSup


def _data(n=4):
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.randn(3, 16, 16, generator=g), "label": (torch.rand(1, 16, 16, generator=g) > 0.5).float()}
            for _ in range(n)]


def _setup(tmp_path):
    backbone = torch.nn.Conv2d(3, 1, 3, padding=1)
    model = MaskSup(backbone, MaskGenerator(seed=0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    evaluator = SupervisedEvaluator(
        device=torch.device("cpu"), val_data_loader=DataLoader(_data(2), batch_size=2), network=model,
        postprocessing=lambda x: x,
        key_val_metric={"val_dice": MeanDice(output_transform=lambda out: ([(o["pred"] > 0).float() for o in out], [o["label"] for o in out]))},
    )
    trainer = MaskSupTrainer(device=torch.device("cpu"), max_epochs=3, train_data_loader=DataLoader(_data(), batch_size=2),
                             network=model, optimizer=optimizer, loss_function=MaskSupLoss())
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run(e.state.epoch))
    TrainingCheckpoints(str(tmp_path), backbone, optimizer, evaluator, TrainingRecord(), masker=model.masker).attach(trainer)

    @trainer.on(Events.ITERATION_STARTED)
    def poison(engine):  # a poisoned batch in epoch 2
        if engine.state.epoch == 2 and engine.state.iteration == 3:
            engine.state.batch["image"][:] = math.nan

    return trainer, backbone


def test_nan_loss_stops_with_the_epoch_and_iteration_named(tmp_path):
    trainer, _ = _setup(tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, iteration 3 .*last good checkpoint is kept"):
        trainer.run()


def test_last_good_checkpoint_survives_and_loads(tmp_path):
    trainer, backbone = _setup(tmp_path)
    with pytest.raises(SystemExit, match=r"^error: loss is nan at epoch 2, iteration 3"):
        run_training(trainer)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["trainer"]["epoch"] == 1  # the epoch before the poisoned batch
    fresh = torch.nn.Conv2d(3, 1, 3, padding=1)
    fresh.load_state_dict(state["model"])
    assert all(torch.isfinite(p).all() for p in fresh.parameters())
    assert torch.load(tmp_path / "model.pt", weights_only=True)["epoch"] == 1
    # the weights in memory were not updated by the bad batch either
    assert all(torch.isfinite(p).all() for p in backbone.parameters())
