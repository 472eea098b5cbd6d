import pytest
import torch

from medseg_masksup.masking import MASK_KINDS, MaskGenerator


@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("shape", [(6, 3, 64, 64), (3, 1, 48, 40), (2, 1, 24, 32, 16)])
def test_ratio_within_bounds_2d_and_3d(kind, shape):
    gen = MaskGenerator(kind, (0.3, 0.6), patch_size=8, seed=0)
    mask = gen(shape)
    assert mask.shape == (shape[0], 1, *shape[2:])
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    cells = mask[0].numel()
    ratios = mask.flatten(1).mean(1)
    # exact on the mask grid: round(r * N) / N with r in [0.3, 0.6]
    assert (ratios >= 0.3 - 1 / cells).all() and (ratios <= 0.6 + 1 / cells).all(), ratios


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_fixed_ratio_is_exact(kind):
    mask = MaskGenerator(kind, 0.5, seed=3)((4, 3, 64, 64))
    assert torch.allclose(mask.flatten(1).mean(1), torch.full((4,), 0.5))


def test_upsampled_mask_keeps_ratio_for_integer_factor():
    mask = MaskGenerator("freeform", 0.25, max_grid=32, seed=1)((2, 3, 128, 128))
    assert mask.shape[-2:] == (128, 128)
    assert torch.allclose(mask.flatten(1).mean(1), torch.full((2,), 0.25))


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_same_seed_same_masks_different_seed_different(kind):
    a = MaskGenerator(kind, (0.4, 0.6), seed=7)
    b = MaskGenerator(kind, (0.4, 0.6), seed=7)
    c = MaskGenerator(kind, (0.4, 0.6), seed=8)
    for _ in range(2):  # the sequences agree, not only the first draw
        ma, mb, mc = a((3, 3, 64, 64)), b((3, 3, 64, 64)), c((3, 3, 64, 64))
        assert torch.equal(ma, mb)
        assert not torch.equal(ma, mc)


def test_masks_differ_across_the_batch():
    mask = MaskGenerator("freeform", 0.5, seed=0)((4, 3, 64, 64))
    assert not torch.equal(mask[0], mask[1])


def test_state_round_trip_reproduces_the_next_masks():
    gen = MaskGenerator("patch", (0.2, 0.7), seed=5)
    gen((2, 3, 32, 32))
    state = gen.get_state()
    expected = gen((2, 3, 32, 32))
    other = MaskGenerator("patch", (0.2, 0.7), seed=99)
    other.set_state(state)
    assert torch.equal(other((2, 3, 32, 32)), expected)


def test_masks_are_made_on_the_input_device():
    x = torch.zeros(2, 3, 32, 32)
    masked, mask = MaskGenerator("block", 0.5, seed=0).apply(x + 1)
    assert mask.device == x.device and masked.device == x.device
    # holes are 0 (mid-grey in [-1, 1]); the rest is untouched
    assert torch.equal(masked, 1 - mask.expand_as(masked))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_masks_on_cuda():
    mask = MaskGenerator("freeform", 0.5, seed=0)((2, 3, 64, 64), device="cuda")
    assert mask.is_cuda


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "stripes"}, "unknown mask kind 'stripes'"),
        ({"ratio": (0.6, 0.4)}, "mask ratio must satisfy 0 <= min <= max < 1"),
        ({"ratio": 1.0}, "mask ratio must satisfy"),
        ({"ratio": -0.1}, "mask ratio must satisfy"),
    ],
)
def test_bad_settings_are_refused_with_a_message(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        MaskGenerator(**kwargs)


def test_1d_input_is_refused():
    with pytest.raises(ValueError, match="2D or 3D"):
        MaskGenerator()((2, 3, 64))
