"""Mask-ratio warm-up: the hidden share follows the epoch (0 first, the target after the warm-up), also on resume."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import DataLoader
from monai.engines.utils import IterationEvents

from medseg_masksup.bundle_files import bundle_file
from medseg_masksup.method.loss import MaskSupLoss
from medseg_masksup.method.mask_schedule import CleanFinalEpochs, MaskRatioWarmup
from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.method.trainer import MaskSupTrainer
from medseg_masksup.method.wrapper import MaskSup


def test_ratio_rises_linearly_from_zero_to_the_target():
    warmup = MaskRatioWarmup(MaskGenerator(ratio=(0.4, 0.6)), epochs=4)
    assert warmup.ratio_at(1) == (0.0, 0.0)
    assert warmup.ratio_at(3) == pytest.approx((0.2, 0.3))
    assert warmup.ratio_at(5) == pytest.approx((0.4, 0.6))
    assert warmup.ratio_at(50) == pytest.approx((0.4, 0.6))


def test_no_warmup_and_the_baseline_leave_the_masker_alone():
    masker = MaskGenerator(ratio=(0.4, 0.6))
    assert MaskRatioWarmup(masker, epochs=0).ratio_at(1) == (0.4, 0.6)
    engine = torch.nn.Module()  # anything without add_event_handler: attach must not touch it
    MaskRatioWarmup(masker, epochs=0).attach(engine)
    MaskRatioWarmup(None, epochs=5).attach(engine)


def test_bad_length_is_refused():
    with pytest.raises(ValueError, match="integer >= 0"):
        MaskRatioWarmup(MaskGenerator(), epochs=-1)


def _hidden_share_per_epoch(epochs: int, warmup: int, start_epoch: int = 0) -> dict[int, float]:
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.randn(3, 32, 32, generator=g), "label": (torch.rand(1, 32, 32, generator=g) > 0.5).float()}
            for _ in range(2)]
    masker = MaskGenerator(ratio=(0.5, 0.5), seed=0)
    model = MaskSup(torch.nn.Conv2d(3, 1, 3, padding=1), masker)
    trainer = MaskSupTrainer(device=torch.device("cpu"), max_epochs=epochs, train_data_loader=DataLoader(data, batch_size=2),
                             network=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                             loss_function=MaskSupLoss(1, 1, 1))
    MaskRatioWarmup(masker, epochs=warmup).attach(trainer)
    shares: dict[int, float] = {}

    @trainer.on(IterationEvents.LOSS_COMPLETED)
    def record(engine):
        shares[engine.state.epoch] = float(engine.state.output["occlusion"].mean())

    if start_epoch:  # what a resume does: the engine starts from a restored epoch counter
        trainer.state.epoch = start_epoch
        trainer.state.iteration = start_epoch * len(data) // 2
    trainer.run()
    return shares


def test_training_hides_nothing_first_then_ramps_to_the_target():
    shares = _hidden_share_per_epoch(epochs=4, warmup=2)
    assert shares[1] == 0.0
    assert shares[2] == pytest.approx(0.25, abs=0.02)
    assert shares[3] == pytest.approx(0.5, abs=0.02) and shares[4] == pytest.approx(0.5, abs=0.02)


def test_a_resumed_run_continues_on_the_schedule():
    shares = _hidden_share_per_epoch(epochs=4, warmup=2, start_epoch=1)
    assert set(shares) == {2, 3, 4}
    assert shares[2] == pytest.approx(0.25, abs=0.02) and shares[3] == pytest.approx(0.5, abs=0.02)


@pytest.mark.integration
def test_the_bundle_wires_the_warmup_to_its_masker(tmp_path):
    parser = ConfigParser()
    parser.read_config(str(bundle_file("train.json")))
    parser.update({"output_dir": str(tmp_path), "mask_warmup_epochs": 3})
    handlers = [h for h in parser.get_parsed_content("train#handlers") if isinstance(h, MaskRatioWarmup)]
    assert len(handlers) == 1
    assert handlers[0].masker is parser.get_parsed_content("masker") and handlers[0].epochs == 3
    assert parser.get_parsed_content("training_record").mask_warmup_epochs == 3


def _masked_loss_per_epoch(epochs: int, clean_final: int, start_epoch: int = 0) -> dict[int, tuple[float, bool]]:
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.randn(3, 32, 32, generator=g), "label": (torch.rand(1, 32, 32, generator=g) > 0.5).float()}
            for _ in range(2)]
    model = MaskSup(torch.nn.Conv2d(3, 1, 3, padding=1), MaskGenerator(ratio=(0.5, 0.5), seed=0))
    loss = MaskSupLoss(1, 1, 1)
    trainer = MaskSupTrainer(device=torch.device("cpu"), max_epochs=epochs, train_data_loader=DataLoader(data, batch_size=2),
                             network=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), loss_function=loss)
    CleanFinalEpochs(model, loss, epochs=clean_final, max_epochs=epochs).attach(trainer)
    seen: dict[int, tuple[float, bool]] = {}

    @trainer.on(IterationEvents.LOSS_COMPLETED)
    def record(engine):
        seen[engine.state.epoch] = (float(engine.state.output["loss_masked"].detach()), "occlusion" in engine.state.output)

    if start_epoch:
        trainer.state.epoch = start_epoch
        trainer.state.iteration = start_epoch
    trainer.run()
    return seen


def test_clean_final_epochs_run_the_plain_step_at_the_end():
    seen = _masked_loss_per_epoch(epochs=4, clean_final=2)
    assert seen[1][0] > 0 and seen[2][0] > 0 and seen[1][1] and seen[2][1]
    assert seen[3] == (0.0, False) and seen[4] == (0.0, False)  # no masked forward at all
    resumed = _masked_loss_per_epoch(epochs=4, clean_final=2, start_epoch=2)
    assert set(resumed) == {3, 4} and resumed[3] == (0.0, False)


def test_clean_final_epochs_refused_at_or_past_the_run_length():
    model, loss = MaskSup(torch.nn.Conv2d(3, 1, 1), MaskGenerator()), MaskSupLoss()
    with pytest.raises(ValueError, match="clean final epochs must be an integer >= 0 and below the run's 4 epochs, got 4"):
        CleanFinalEpochs(model, loss, epochs=4, max_epochs=4)
    from medseg_masksup.training.checks import check_settings

    assert check_settings(epochs=4, clean_final_epochs=4) == [
        "--clean_final_epochs must be an integer >= 0 and below --epochs, got 4"]
    assert check_settings(epochs=4, clean_final_epochs=3) == []


@pytest.mark.integration
def test_the_bundle_wires_clean_final_epochs(tmp_path):
    parser = ConfigParser()
    parser.read_config(str(bundle_file("train.json")))
    parser.update({"output_dir": str(tmp_path), "clean_final_epochs": 5})
    handlers = [h for h in parser.get_parsed_content("train#handlers") if isinstance(h, CleanFinalEpochs)]
    assert len(handlers) == 1 and handlers[0].epochs == 5 and handlers[0].max_epochs == 30
    assert handlers[0].network is parser.get_parsed_content("masksup_network")
    assert parser.get_parsed_content("training_record").clean_final_epochs == 5
