import pytest
import torch
from monai.data import DataLoader
from monai.engines.utils import IterationEvents

from medseg_masksup.method.loss import MaskSupLoss
from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.method.trainer import MaskSupTrainer
from medseg_masksup.method.wrapper import MaskSup


class CountingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.conv(x)


def _loader(n=4, size=16):
    g = torch.Generator().manual_seed(0)
    data = [{"image": torch.randn(3, size, size, generator=g), "label": (torch.rand(1, size, size, generator=g) > 0.5).float()} for _ in range(n)]
    return DataLoader(data, batch_size=2)


def _trainer(masker, weights, epochs=1):
    net = CountingNet()
    model = MaskSup(net, masker)
    trainer = MaskSupTrainer(
        device=torch.device("cpu"),
        max_epochs=epochs,
        train_data_loader=_loader(),
        network=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_function=MaskSupLoss(*weights),
    )
    return trainer, net


def test_baseline_runs_one_forward_per_step_masksup_two():
    trainer, net = _trainer(None, (1, 0, 0))
    trainer.run()
    assert trainer.state.iteration == 2 and net.calls == 2
    trainer, net = _trainer(MaskGenerator(seed=0), (1, 1, 1))
    trainer.run()
    assert trainer.state.iteration == 2 and net.calls == 4


def test_output_carries_image_label_pred_loss_and_parts():
    trainer, _ = _trainer(MaskGenerator(seed=0), (1, 1, 1))
    seen = {}

    @trainer.on(IterationEvents.LOSS_COMPLETED)
    def grab(engine):  # before MONAI decollates the batch output into a list of items
        seen.update(engine.state.output)

    trainer.run()
    for key in ("image", "label", "pred", "loss", "loss_seg", "loss_masked", "loss_consistency", "occlusion"):
        assert key in seen, key
    assert seen["pred"].shape == seen["label"].shape == (2, 1, 16, 16)
    assert torch.allclose(seen["loss"], seen["loss_seg"] + seen["loss_masked"] + seen["loss_consistency"])
    # after decollation every item carries the loss parts, so MONAI handlers can log them
    item = trainer.state.output[0]
    assert {"image", "label", "pred", "loss", "loss_seg", "loss_masked", "loss_consistency"} <= set(item)


def _grad_from(masked_only: bool) -> torch.Tensor:
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 1, 3, padding=1)
    model = MaskSup(net, MaskGenerator(ratio=0.5, seed=0)).train()
    x, y = torch.randn(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    out = model(x)
    weights = (0.0, 1.0, 0.0) if masked_only else (1.0, 0.0, 0.0)
    MaskSupLoss(*weights)(out.logits, out.masked_logits, y).total.backward()
    return net.weight.grad.clone()


def test_gradients_reach_the_weights_from_both_branches():
    clean, masked = _grad_from(False), _grad_from(True)
    assert clean.abs().sum() > 0 and masked.abs().sum() > 0
    assert not torch.allclose(clean, masked)  # the masked branch contributes its own gradient
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 1, 3, padding=1)
    model = MaskSup(net, MaskGenerator(ratio=0.5, seed=0)).train()
    x, y = torch.randn(2, 3, 16, 16), (torch.rand(2, 1, 16, 16) > 0.5).float()
    out = model(x)
    MaskSupLoss(0.0, 0.0, 1.0)(out.logits, out.masked_logits, y).total.backward()
    assert net.weight.grad.abs().sum() > 0  # the consistency term alone trains the shared weights


def test_a_loss_that_is_not_masksup_is_refused():
    with pytest.raises(TypeError, match="needs a MaskSupLoss"):
        MaskSupTrainer(
            device=torch.device("cpu"), max_epochs=1, train_data_loader=_loader(), network=MaskSup(CountingNet()),
            optimizer=torch.optim.SGD(CountingNet().parameters(), lr=0.1), loss_function=torch.nn.BCEWithLogitsLoss(),
        )


def test_training_lowers_the_loss():
    trainer, _ = _trainer(MaskGenerator(seed=0), (1, 1, 1), epochs=15)
    losses = []
    trainer.add_event_handler(IterationEvents.MODEL_COMPLETED, lambda e: losses.append(float(e.state.output[0]["loss"])))
    trainer.run()
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4


def test_training_step_feeds_plain_tensors_to_the_network():
    """MetaTensor batches (what MONAI transforms make) reach the network as plain tensors: the training
    step needs no metadata, and MetaTensor's per-op dispatch is a large share of a CPU step."""
    from monai.data import MetaTensor

    seen_types = []

    class TypeRecordingNet(CountingNet):
        def forward(self, x):
            seen_types.append(type(x))
            return super().forward(x)

    g = torch.Generator().manual_seed(0)
    data = [
        {"image": MetaTensor(torch.randn(3, 16, 16, generator=g)), "label": MetaTensor((torch.rand(1, 16, 16, generator=g) > 0.5).float())}
        for _ in range(2)
    ]
    net = TypeRecordingNet()
    model = MaskSup(net, MaskGenerator(seed=0))
    trainer = MaskSupTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=DataLoader(data, batch_size=2),
        network=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_function=MaskSupLoss(1, 1, 1),
    )
    trainer.run()
    assert seen_types and all(t is torch.Tensor for t in seen_types), seen_types
