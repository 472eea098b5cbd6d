"""Random occlusion masks for MaskSup, generated in batches on the training device.

Every mask kind is built the same way: a *priority field* gives each pixel (voxel) the moment at
which a random occluder reaches it; the first ``round(ratio * N)`` pixels in that order are hidden.
The hidden share is therefore exact on the mask grid, whatever the kind:

- ``freeform``: thick random polylines drawn stroke after stroke (the irregular hole masks of the
  paper, after DeepFill v2's free-form generator); the last stroke is cut where the ratio is met.
- ``patch``: square patches hidden in random order (MAE style).
- ``block``: large random rectangles (cutout style), the last one grown from its centre.

Masks are computed on a grid of at most ``max_grid`` cells per axis and upsampled (nearest) to the
image size, which keeps generation cheap next to a training step. ``1`` marks a hidden pixel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

MASK_KINDS = ("freeform", "patch", "block")


def _as_ratio_range(ratio: float | Sequence[float]) -> tuple[float, float]:
    lo, hi = (float(ratio), float(ratio)) if isinstance(ratio, (int, float)) else (float(ratio[0]), float(ratio[1]))
    if not (0.0 <= lo <= hi < 1.0):
        raise ValueError(f"mask ratio must satisfy 0 <= min <= max < 1, got ({lo}, {hi})")
    return lo, hi


class MaskGenerator:
    """Seeded, batched generator of binary occlusion masks on any device, for 2D and 3D images.

    Args:
        kind: one of ``MASK_KINDS``.
        ratio: hidden share of the image, a number or a ``(min, max)`` range sampled per image.
        patch_size: patch edge in pixels for ``patch`` (on the image, not the grid).
        max_grid: masks are computed on at most this many cells per axis, then upsampled.
        seed: seed of the generator's own ``torch.Generator``; equal seeds give equal mask sequences.
    """

    def __init__(
        self,
        kind: str = "freeform",
        ratio: float | Sequence[float] = (0.4, 0.6),
        patch_size: int = 16,
        max_grid: int = 64,
        seed: int | None = 0,
    ) -> None:
        if kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASK_KINDS)}")
        if patch_size < 1 or max_grid < 4:
            raise ValueError(f"patch_size must be >= 1 and max_grid >= 4, got {patch_size} and {max_grid}")
        self.kind = kind
        self.ratio = _as_ratio_range(ratio)
        self.patch_size = int(patch_size)
        self.max_grid = int(max_grid)
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}

    def __repr__(self) -> str:
        return f"MaskGenerator(kind={self.kind!r}, ratio={self.ratio}, patch_size={self.patch_size}, seed={self.seed})"

    def reset(self, seed: int | None = None) -> None:
        """Restart the random sequence (with ``seed`` if given)."""
        if seed is not None:
            self.seed = seed
        self._generators.clear()

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._generators:
            gen = torch.Generator(device=device)
            gen.manual_seed(self.seed if self.seed is not None else torch.seed())
            self._generators[key] = gen
        return self._generators[key]

    def get_state(self) -> dict[str, torch.Tensor]:
        """RNG states per device, for checkpoints."""
        return {k: g.get_state() for k, g in self._generators.items()}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        for key, value in state.items():
            self._generator(torch.device(key)).set_state(value)

    def __call__(self, shape: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
        """Masks for a batch of ``shape`` ``(B, C, *spatial)``: a float tensor ``(B, 1, *spatial)`` of 0/1."""
        device = torch.device(device)
        batch, spatial = int(shape[0]), tuple(int(s) for s in shape[2:])
        if len(spatial) not in (2, 3):
            raise ValueError(f"masks are made for 2D or 3D images (B, C, *spatial); got shape {tuple(shape)}")
        gen = self._generator(device)
        scale = min(1.0, self.max_grid / max(spatial))
        grid = tuple(max(1, round(s * scale)) for s in spatial)
        lo, hi = self.ratio
        ratios = lo + (hi - lo) * torch.rand(batch, generator=gen, device=device)
        n_cells = math.prod(grid)
        counts = torch.round(ratios * n_cells).long()
        if self.kind == "patch":
            patch = max(1, round(self.patch_size * scale))
            field = _patch_field(batch, grid, patch, gen, device)
        elif self.kind == "block":
            field = _occluder_field(batch, grid, counts, gen, device, _block_times)
        else:
            field = _stroke_field(batch, grid, counts, gen, device)
        mask = _first_k(field.reshape(batch, -1), counts).reshape(batch, 1, *grid).float()
        if grid != spatial:
            mask = torch.nn.functional.interpolate(mask, size=spatial, mode="nearest")
        return mask

    def apply(self, images: torch.Tensor, fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Occlude ``images`` (``x ⊙ (1 - m) + fill·m``); returns the masked images and the masks."""
        mask = self(images.shape, images.device).to(images.dtype)
        masked = images * (1 - mask)
        if fill:
            masked = masked + fill * mask
        return masked, mask


def _first_k(field: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Boolean mask of the ``counts[b]`` smallest entries of each row of ``field`` (ties broken by index)."""
    order = field.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(field.shape[1], device=field.device).expand_as(order))
    return ranks < counts[:, None]


def _patch_field(batch: int, grid: tuple[int, ...], patch: int, gen: torch.Generator, device: torch.device):
    """Patches in random order; inside a patch, raster order (so a partial last patch is possible)."""
    n_patches = [math.ceil(g / patch) for g in grid]
    noise = torch.rand(batch, math.prod(n_patches), generator=gen, device=device)
    patch_rank = noise.argsort(dim=1).argsort(dim=1).reshape(batch, *n_patches)
    per_patch = patch ** len(grid)
    field = patch_rank
    for axis in range(len(grid)):
        field = field.repeat_interleave(patch, dim=axis + 1)
    field = field[(slice(None),) + tuple(slice(0, g) for g in grid)]
    inner = torch.zeros(grid, dtype=torch.long, device=device)
    for axis, g in enumerate(grid):
        shape = [1] * len(grid)
        shape[axis] = g
        inner = inner * patch + (torch.arange(g, device=device) % patch).reshape(shape)
    return field * per_patch + inner


def _coords(grid: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Cell centres in isotropic units (longest axis spans [0, 1]), shape ``(N, D)``."""
    unit = max(grid)
    axes = [(torch.arange(g, device=device, dtype=torch.float32) + 0.5) / unit for g in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


def _occluder_field(batch, grid, counts, gen, device, times_fn, per_round: int = 8, max_rounds: int = 16):
    """Draw occluders round after round until each image has at least ``counts`` covered cells."""
    coords = _coords(grid, device)
    extent = torch.tensor(grid, device=device, dtype=torch.float32) / max(grid)
    field = torch.full((batch, coords.shape[0]), math.inf, device=device)
    for round_idx in range(max_rounds):
        times = times_fn(batch, per_round, coords, extent, gen)  # (B, per_round, N), inf where uncovered
        offsets = torch.arange(per_round, device=device, dtype=torch.float32) + round_idx * per_round
        field = torch.minimum(field, (times + offsets[None, :, None]).amin(dim=1))
        if bool((torch.isfinite(field).sum(dim=1) >= counts).all()):
            return field
    # Very large ratios on odd shapes: fill what is left in random order after every occluder.
    rest = torch.rand(field.shape, generator=gen, device=device) + max_rounds * per_round
    return torch.where(torch.isfinite(field), field, rest)


def _stroke_round(batch, strokes, grid, gen, device, first_stroke, vertices=(4, 9), step=(0.08, 0.25), width=(0.05, 0.12)):
    """One round of ``strokes`` random thick polylines per image: ``(B, N)`` field holding, per cell, the
    smallest ``stroke number + arrival time along it`` (inf where no stroke passes).

    Each segment is evaluated only on the window of cells its capsule can reach (a cell farther than the
    stroke radius from the segment is never covered), and the minimum over strokes is a scatter-min.
    ``tests/test_masking.py`` keeps the plain whole-grid version and checks both agree bit for bit.
    """
    dims, unit, n = len(grid), max(grid), math.prod(grid)
    extent = torch.tensor(grid, device=device, dtype=torch.float32) / unit
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

    win = min(unit, math.ceil(unit * (step[1] + width[1])) + 3)  # cells a segment's capsule can span per axis
    a, b = points[:, :, :-1], points[:, :, 1:]  # (B, S, G, D)
    lo = torch.floor((torch.minimum(a, b) - r2.sqrt()[..., None]) * unit - 1.5).long().clamp_(min=0)
    cells = lo[..., None] + torch.arange(win, device=device)  # (B, S, G, D, win) cell index per axis

    def along(t: torch.Tensor, d: int) -> torch.Tensor:  # (B, S, G, win) -> (B, S, G, 1.., win, 1..) on axis d
        shape = [*t.shape[:3]] + [1] * dims
        shape[3 + d] = win
        return t.reshape(shape)

    def per_segment(t: torch.Tensor) -> torch.Tensor:  # (B, S, G) -> (B, S, G, 1, .., 1)
        return t.reshape(*t.shape, *([1] * dims))

    ap = [along((cells[..., d, :].float() + 0.5) / unit, d) - per_segment(a[..., d]) for d in range(dims)]
    ab = [per_segment(b[..., d] - a[..., d]) for d in range(dims)]
    seg_len2 = sum(ab[d] ** 2 for d in range(dims)).clamp_min(1e-12)
    u = (sum(ap[d] * ab[d] for d in range(dims)) / seg_len2).clamp_(0, 1)
    dist2 = sum((ap[d] - u * ab[d]) ** 2 for d in range(dims))
    seg = torch.arange(n_seg, device=device)
    reach2 = torch.where(seg < used, r2, -1.0)  # (B, S, G): squared radius, negative for unused segments
    # flat cell index; cells past the grid's end go to a spare column n, dropped below
    flat = 0
    for d in range(dims):
        index = cells[..., d, :]
        flat = flat * grid[d] + along(index.masked_fill(index >= grid[d], n), d)
    flat = flat.clamp_(max=n)
    number = (torch.arange(strokes, device=device, dtype=torch.float32) + first_stroke)[None, :, None]
    value = u.add_(per_segment(seg.float().expand(1, 1, -1))).div_(n_seg).add_(per_segment(number.expand(1, -1, n_seg)))
    value.masked_fill_(dist2 > per_segment(reach2), math.inf)
    field = torch.full((batch, n + 1), math.inf, device=device)
    field.scatter_reduce_(1, flat.expand_as(value).reshape(batch, -1), value.reshape(batch, -1), reduce="amin")
    return field[:, :n]


def _stroke_field(batch, grid, counts, gen, device, per_round: int = 8, max_rounds: int = 16):
    """Free-form strokes round after round until each image has at least ``counts`` covered cells.

    Same result as drawing every stroke over the whole grid, computed on each segment's reachable window.
    """
    field = torch.full((batch, math.prod(grid)), math.inf, device=device)
    for round_idx in range(max_rounds):
        field = torch.minimum(field, _stroke_round(batch, per_round, grid, gen, device, round_idx * per_round))
        if bool((torch.isfinite(field).sum(dim=1) >= counts).all()):
            return field
    rest = torch.rand(field.shape, generator=gen, device=device) + max_rounds * per_round
    return torch.where(torch.isfinite(field), field, rest)


def _block_times(batch, blocks, coords, extent, gen, size=(0.15, 0.5)):
    """Per-cell arrival time in random axis-aligned boxes, grown from each box's centre."""
    device, dims = coords.device, coords.shape[1]
    half = (size[0] + (size[1] - size[0]) * torch.rand(batch, blocks, 1, dims, generator=gen, device=device)) * extent / 2
    centre = torch.rand(batch, blocks, 1, dims, generator=gen, device=device) * extent
    reach = ((coords[None, None] - centre).abs() / half).amax(dim=-1)  # Chebyshev distance, 1 on the box edge
    return torch.where(reach <= 1, reach * 0.999, torch.full_like(reach, math.inf))
