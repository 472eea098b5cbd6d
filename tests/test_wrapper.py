import pytest
import torch

from medseg_masksup.method.masking import MaskGenerator
from medseg_masksup.networks import NETWORKS, build_network, required_divisor
from medseg_masksup.method.wrapper import MaskSup, MaskSupOutput


def _input(name: str) -> torch.Tensor:
    size = max(32, 2 * required_divisor(name))  # SwinUNETR needs > 1 cell at its bottleneck
    return torch.randn(2, 3, size, size)


@pytest.mark.parametrize("name", NETWORKS)
def test_eval_mode_is_the_bare_backbone_bit_for_bit(name):
    torch.manual_seed(0)
    backbone = build_network(name)
    model = MaskSup(backbone, MaskGenerator(seed=0)).eval()
    bare = build_network(name).eval()
    bare.load_state_dict(model.backbone.state_dict())  # what a checkpoint stores loads into a bare net
    x = _input(name)
    with torch.no_grad():
        out, ref = model(x), bare(x)
    if isinstance(ref, (list, tuple)):  # BasicUNetPlusPlus returns a list
        assert all(torch.equal(a, b) for a, b in zip(out, ref))
    else:
        assert torch.equal(out, ref)


def test_wrapper_adds_no_parameters():
    backbone = build_network("unet")
    model = MaskSup(backbone, MaskGenerator())
    assert [n for n, _ in model.named_parameters()] == [f"backbone.{n}" for n, _ in backbone.named_parameters()]


@pytest.mark.parametrize("name", ["unet", "unetpp"])
def test_train_mode_returns_both_branches(name):
    model = MaskSup(build_network(name), MaskGenerator(seed=0)).train()
    x = _input(name)
    out = model(x)
    assert isinstance(out, MaskSupOutput)
    assert out.logits.shape == out.masked_logits.shape == (2, 1, *x.shape[2:])
    assert out.mask.shape == (2, 1, *x.shape[2:])


class CountingNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 3, padding=1)
        self.calls, self.batch_sizes, self.inputs = 0, [], []

    def forward(self, x):
        self.calls += 1
        self.batch_sizes.append(x.shape[0])
        self.inputs.append(x.detach().clone())
        return self.conv(x)


def test_baseline_does_one_forward_masksup_two():
    net = CountingNet()
    MaskSup(net, None).train()(torch.randn(2, 3, 16, 16))
    assert net.calls == 1
    net = CountingNet()
    x = torch.randn(2, 3, 16, 16)
    out = MaskSup(net, MaskGenerator(ratio=0.5, seed=0)).train()(x)
    assert net.calls == 2
    assert torch.equal(net.inputs[0], x)
    assert torch.equal(net.inputs[1], x * (1 - out.mask))  # the image is occluded, holes = 0


def test_concat_mode_is_one_forward_of_both_halves():
    torch.manual_seed(0)
    net = CountingNet()
    x = torch.randn(2, 3, 16, 16)
    out = MaskSup(net, MaskGenerator(ratio=0.5, seed=0), concat=True).train()(x)
    assert net.calls == 1 and net.batch_sizes == [4]
    seq = MaskSup(net, MaskGenerator(ratio=0.5, seed=0), concat=False).train()(x)
    assert torch.allclose(out.logits, seq.logits, atol=1e-6)
    assert torch.allclose(out.masked_logits, seq.masked_logits, atol=1e-6)
