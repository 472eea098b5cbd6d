"""The embedded default data: a small synthetic gland/polyp-like binary segmentation set.

Each image shows several irregular glands (a dark nuclear rim around a pale, textured lumen) on
textured pink stroma, under an uneven illumination, with scattered nuclei and rim-less pale spots
as distractors, blur and noise. Gland interiors and stroma have similar brightness, so a global
intensity threshold fails while a network that learns the rim-plus-lumen shape succeeds.

The set is written once (PNG images, 0/255 PNG masks, a decathlon-style ``datalist.json``) and
reused while its recipe (count, size, seed, version) is unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..io.atomic import atomic_target, write_text

RECIPE_VERSION = 1
STROMA = np.array([0.86, 0.62, 0.74])
NUCLEUS = np.array([0.36, 0.22, 0.52])
LUMEN = np.array([0.97, 0.90, 0.95])


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return field / (field.std() + 1e-8)


def _blob(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An irregular closed shape: its filled area and a signed distance-like radius field."""
    radius = rng.uniform(0.07, 0.17) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    theta = np.arctan2(yy - cy, xx - cx)
    wobble = sum(rng.uniform(0, 0.18) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in range(2, 5))
    stretch = rng.uniform(0.7, 1.3)
    rr = np.hypot((yy - cy) * stretch, (xx - cx) / stretch) / (radius * (1 + wobble))
    return rr <= 1.0, rr


def make_case(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic ``(image uint8 (H, W, 3), label uint8 (H, W) in {0, 255})`` pair."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    tissue = 1 + 0.10 * _smooth_noise(rng, size, size / 10) + 0.06 * _smooth_noise(rng, size, 1.5)
    image = STROMA[None, None] * tissue[..., None]
    label = np.zeros((size, size), bool)
    for _ in range(rng.integers(2, 6)):
        inside, rr = _blob(rng, size, yy, xx)
        inside &= ~label  # glands do not overlap
        rim_width = rng.uniform(0.18, 0.32)
        rim = inside & (rr > 1 - rim_width)
        nuclei = (_smooth_noise(rng, size, 0.8) > -0.3)[..., None]
        lumen_tex = 1 + 0.05 * _smooth_noise(rng, size, 2.0)[..., None]
        image = np.where(inside[..., None], LUMEN * lumen_tex, image)
        image = np.where((rim[..., None] & nuclei), NUCLEUS, image)
        label |= inside
    # distractors: scattered stromal nuclei and pale rim-less spots
    dots = _smooth_noise(rng, size, 0.7) > 2.4
    image = np.where((dots & ~label)[..., None], NUCLEUS * 1.1, image)
    for _ in range(rng.integers(1, 4)):
        spot, _rr = _blob(rng, size, yy, xx)
        spot &= ~ndimage.binary_dilation(label, iterations=3)
        image = np.where(spot[..., None], LUMEN * 0.97, image)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / size
    image = image * (0.72 + 0.45 * (ramp - ramp.min()) / (np.ptp(ramp) + 1e-8))[..., None]
    image = ndimage.gaussian_filter(image, sigma=(rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), 0))
    image = image + rng.normal(0, 0.035, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8), label.astype(np.uint8) * 255


def _atomic_png(array: np.ndarray, path: Path) -> None:
    with atomic_target(path) as tmp:  # a unique temporary name per call: ranks may race
        Image.fromarray(array).save(tmp)


def ensure_synthetic_dataset(out_dir: str | os.PathLike, n_cases: int = 200, size: int = 128, seed: int = 0,
                             folds: int = 5) -> Path:
    """Create (once) the synthetic set under ``out_dir`` and return its ``datalist.json`` path.

    Items carry a ``fold`` key (``i % folds``); the bundle validates on one fold, never on the rest.
    """
    out = Path(out_dir)
    datalist_path = out / "datalist.json"
    recipe = {"version": RECIPE_VERSION, "n_cases": n_cases, "size": size, "seed": seed, "folds": folds}
    if datalist_path.is_file():
        try:
            if json.loads(datalist_path.read_text()).get("recipe") == recipe:
                return datalist_path
        except json.JSONDecodeError:
            pass  # half-written by an interrupted run: make it again
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n_cases):
        image, label = make_case(rng, size)
        name = f"case_{i:03d}.png"
        _atomic_png(image, out / "images" / name)
        _atomic_png(label, out / "labels" / name)
        items.append({"image": f"images/{name}", "label": f"labels/{name}", "fold": i % folds, "id": f"case_{i:03d}"})
    datalist = {
        "name": "synthetic-glands",
        "description": "MaskSup embedded default data: synthetic gland/polyp-like blobs on textured stroma",
        "labels": {"0": "background", "1": "foreground"},
        "mask_values": "0/255",
        "recipe": recipe,
        "training": items,
        "validation": [],
        "test": [],
    }
    write_text(datalist_path, json.dumps(datalist, indent=1))
    return datalist_path
