import math

import pytest
import torch

from medseg_masksup.method.masking import MASK_KINDS, MaskGenerator


@pytest.mark.integration
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


@pytest.mark.integration
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


# The plain whole-grid stroke rasteriser: the reference the windowed one in masking.py must match bit for bit.
def _reference_stroke_times(batch, strokes, coords, extent, gen, vertices=(4, 9), step=(0.08, 0.25), width=(0.05, 0.12)):
    """Per-cell arrival time along random thick polylines, in [0, 1) inside a stroke, inf outside."""
    device, dims = coords.device, coords.shape[1]
    n_seg = vertices[1] - 1

    def uniform(lo, hi, *size):
        return lo + (hi - lo) * torch.rand(*size, generator=gen, device=device)

    start = torch.rand(batch, strokes, 1, dims, generator=gen, device=device) * extent
    direction = torch.randn(batch, strokes, n_seg, dims, generator=gen, device=device)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    steps = direction * uniform(*step, batch, strokes, n_seg, 1)
    points = torch.minimum(torch.maximum(torch.cat([start, steps], dim=2).cumsum(dim=2), torch.zeros_like(extent)), extent)
    used = torch.randint(vertices[0] - 1, n_seg + 1, (batch, strokes, 1), generator=gen, device=device)
    r2 = (uniform(*width, batch, strokes, 1) / 2) ** 2
    axes = [coords[:, d][None, None] for d in range(dims)]  # each (1, 1, N)
    times = torch.full((batch, strokes, coords.shape[0]), math.inf, device=device)
    for seg in range(n_seg):
        a = points[:, :, seg, :, None]  # (B, S, D, 1)
        ab = points[:, :, seg + 1, :, None] - a
        ap = [axes[d] - a[:, :, d] for d in range(dims)]  # each (B, S, N)
        seg_len2 = sum(ab[:, :, d] ** 2 for d in range(dims)).clamp_min(1e-12)
        u = (sum(ap[d] * ab[:, :, d] for d in range(dims)) / seg_len2).clamp_(0, 1)
        dist2 = sum((ap[d] - u * ab[:, :, d]) ** 2 for d in range(dims))
        covered = (dist2 <= r2) & (seg < used)
        times = torch.where(covered, torch.minimum(times, (u + seg) / n_seg), times)
    return times


@pytest.mark.integration
@pytest.mark.parametrize("shape", [(4, 3, 64, 64), (3, 1, 48, 40), (2, 1, 24, 32, 16)])
def test_windowed_strokes_equal_the_whole_grid_reference(shape, monkeypatch):
    import medseg_masksup.method.masking as masking

    fast = MaskGenerator("freeform", (0.3, 0.7), seed=11)
    expected_masks = [fast(shape) for _ in range(3)]

    def reference_field(batch, grid, counts, gen, device):
        return masking._occluder_field(batch, grid, counts, gen, device, _reference_stroke_times)

    monkeypatch.setattr(masking, "_stroke_field", reference_field)
    slow = MaskGenerator("freeform", (0.3, 0.7), seed=11)
    for expected in expected_masks:
        assert torch.equal(slow(shape), expected)
