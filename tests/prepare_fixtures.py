"""Tiny fake dataset trees in each official layout, for the ``test_prepare_*`` tests.

Every builder writes a few small, distinct images (random noise, non-square so
that a transposed mask would be caught) with masks in the dataset's own format,
and returns a :class:`Tree` recording, for each expected datalist entry, the image
path and the expected boolean foreground.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

try:  # make the repository importable however pytest was started
    import data_scripts  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_scripts.cli import main  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Tree:
    """A fake dataset: ``root`` to pass as ``--src`` and what the datalist should contain."""

    root: Path
    # (split, id) -> (image path, expected foreground (H, W) bool)
    expected: dict[tuple[str, str], tuple[Path, np.ndarray]] = field(default_factory=dict)

    def add(self, split: str, item_id: str, image: Path, fg: np.ndarray) -> None:
        self.expected[(split, item_id)] = (image, fg)

    def counts(self) -> dict[str, int]:
        out = {"training": 0, "validation": 0, "test": 0}
        for split, _ in self.expected:
            out[split] += 1
        return out


def image_array(w: int, h: int, seed: int) -> np.ndarray:
    """Random RGB noise (H, W, 3), different for each seed."""
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def mask_fg(w: int, h: int, seed: int) -> np.ndarray:
    """An off-centre rectangle plus a blob, so orientation errors show (H, W) bool."""
    fg = np.zeros((h, w), bool)
    r0, c0 = 1 + seed % 3, 2 + seed % 4
    fg[r0 : r0 + h // 3, c0 : c0 + w // 2] = True
    fg[h - 4 : h - 1, w - 5 : w - 2] = True
    return fg


def save(path: Path, arr: np.ndarray, **kw) -> Path:
    """Save an array with PIL (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)
    return path


def save_mask(path: Path, fg: np.ndarray, style: str) -> Path:
    """Write ``fg`` in one of the datasets' mask styles.

    ``L255``: grey 0/255; ``instance``: instance ids 0..3; ``rgb``: RGB 0/255;
    ``rgb_jpeg``: RGB 0/255 saved as JPEG (compression noise); ``bit``: 1-bit BMP;
    ``01``: grey 0/1.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    u8 = fg.astype(np.uint8)
    if style == "L255":
        Image.fromarray(u8 * 255).save(path)
    elif style == "01":
        Image.fromarray(u8).save(path)
    elif style == "instance":
        ids = u8.copy()
        ids[:, fg.shape[1] // 2 :] *= 2  # two instances of the rectangle
        ids[fg.shape[0] - 4 :, :] *= 3  # and a third for the blob
        Image.fromarray(ids).save(path)
    elif style == "rgb":
        Image.fromarray(np.repeat(u8[..., None] * 255, 3, axis=2)).save(path)
    elif style == "rgb_jpeg":
        Image.fromarray(np.repeat(u8[..., None] * 255, 3, axis=2)).save(path, format="JPEG", quality=90)
    elif style == "bit":
        Image.fromarray(fg).convert("1").save(path)
    else:  # pragma: no cover
        raise ValueError(style)
    return path


def _pair(tree: Tree, split: str, item_id: str, image: Path, mask: Path, style: str, w: int, h: int, seed: int) -> None:
    fg = mask_fg(w, h, seed)
    save(image, image_array(w, h, seed))
    save_mask(mask, fg, style)
    tree.add(split, item_id, image, fg)


def make_glas_official(base: Path, train: int = 4, test_a: int = 2, test_b: int = 2) -> Tree:
    """Warwick QU release: flat BMPs, ``_anno`` instance-id masks, ``Grade.csv``."""
    root = base / "Warwick QU Dataset (Released 2016_07_08)"
    tree = Tree(base)
    seed = 0
    for prefix, n, split in (("train", train, "training"), ("testA", test_a, "test"), ("testB", test_b, "test")):
        for i in range(1, n + 1):
            seed += 1
            name = f"{prefix}_{i}"
            _pair(tree, split, name, root / f"{name}.bmp", root / f"{name}_anno.bmp", "instance", 30, 20, seed)
    (root / "Grade.csv").write_text("name,patient ID,GlaS,grade (Sirinukunwattana et al. 2015)\ntrain_1,1,benign,adenomatous\n")
    return tree


def make_glas_repack(base: Path, train: int = 4, test: int = 2) -> Tree:
    """``Train_Folder/{img,labelcol}`` + ``Test_Folder/{img,labelcol}`` PNG with instance ids."""
    tree = Tree(base)
    for folder, n, split, off in (("Train_Folder", train, "training", 0), ("Test_Folder", test, "test", 100)):
        for i in range(1, n + 1):
            d = base / folder
            _pair(tree, split, str(i), d / "img" / f"{i}.png", d / "labelcol" / f"{i}.png", "instance", 30, 20, off + i)
    return tree


def make_kvasir(base: Path, n: int = 6, layout: str = "flat", n_val: int = 2) -> Tree:
    """Kvasir-SEG: ``images/*.jpg`` + ``masks/*.jpg`` (RGB JPEG masks, sizes vary per image).

    ``layout``: ``flat`` (all training), ``folders`` (``train/`` + ``val/``) or
    ``files`` (``train.txt`` + ``val.txt`` next to the folders).
    """
    tree = Tree(base)
    names = [f"cju{i:02d}abc{i * 7:03d}" for i in range(n)]
    val = set(names[:n_val]) if layout in ("folders", "files") else set()
    for i, name in enumerate(names):
        split = "validation" if name in val else "training"
        d = base / {"flat": "", "files": "", "folders": "val" if split == "validation" else "train"}[layout]
        w, h = 32 + 2 * i, 24 + i  # sizes vary per image
        _pair(tree, split, name, d / "images" / f"{name}.jpg", d / "masks" / f"{name}.jpg", "rgb_jpeg", w, h, 200 + i)
    if layout == "files":
        (base / "train.txt").write_text("".join(f"{x}\n" for x in names if x not in val))
        (base / "val.txt").write_text("".join(f"{x}.jpg\n" for x in names if x in val))
    return tree


def make_cvc(base: Path, n: int = 5, variant: str = "tif") -> Tree:
    """CVC-ClinicDB: ``Original/N.tif`` + ``Ground Truth/N.tif`` (``png``: the PNG variant; ``both``: TIF/ and PNG/)."""
    tree = Tree(base)
    variants = ("tif", "png") if variant == "both" else (variant,)
    for v in variants:
        root = base / v.upper() if variant == "both" else base
        for i in range(1, n + 1):
            fg = mask_fg(38, 29, 300 + i)
            img = save(root / "Original" / f"{i}.{v}", image_array(38, 29, 300 + i))
            save_mask(root / "Ground Truth" / f"{i}.{v}", fg, "L255" if v == "tif" else "rgb")
            if v == variants[0]:
                tree.add("training", str(i), img, fg)
    return tree


PRANET_TESTS = ("CVC-300", "CVC-ClinicDB", "CVC-ColonDB", "ETIS-LaribPolypDB", "Kvasir")


def make_pranet(base: Path, n_kvasir: int = 3, n_cvc: int = 3, n_test: int = 2) -> Tree:
    """PraNet: ``TrainDataset/{image,mask}`` + ``TestDataset/<set>/{images,masks}`` (PNG)."""
    tree = Tree(base)
    train = base / "TrainDataset"
    names = [f"cju{i}xyz" for i in range(n_kvasir)] + [str(i + 1) for i in range(n_cvc)]
    for i, name in enumerate(names):
        _pair(tree, "training", name, train / "image" / f"{name}.png", train / "mask" / f"{name}.png", "L255", 30, 22, 400 + i)
    seed = 500
    for t in PRANET_TESTS:
        for i in range(n_test):
            seed += 1
            d = base / "TestDataset" / t
            name = f"{i + 1}"
            _pair(tree, "test", f"{t}/{name}", d / "images" / f"{name}.png", d / "masks" / f"{name}.png", "rgb", 30, 22, seed)
    return tree


def make_isic(base: Path, n_train: int = 4, n_val: int = 2, n_test: int = 2) -> Tree:
    """ISIC 2018 Task 1: ``..._Input/ISIC_n.jpg`` + ``..._GroundTruth/ISIC_n_segmentation.png`` (+ licence files)."""
    tree = Tree(base)
    k = 0
    for part, split, n in (("Training", "training", n_train), ("Validation", "validation", n_val), ("Test", "test", n_test)):
        inp = base / f"ISIC2018_Task1-2_{part}_Input"
        gt = base / f"ISIC2018_Task1_{part}_GroundTruth"
        for _ in range(n):
            k += 1
            name = f"ISIC_{k:07d}"
            _pair(tree, split, name, inp / f"{name}.jpg", gt / f"{name}_segmentation.png", "L255", 34, 26, 600 + k)
        (inp / "LICENSE.txt").write_text("CC-BY-NC\n")
        (inp / "ATTRIBUTION.txt").write_text("ISIC Archive\n")
        (gt / "LICENSE.txt").write_text("CC-BY-NC\n")
    return tree


def make_ph2(base: Path, n: int = 5) -> Tree:
    """PH2: ``PH2 Dataset images/IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` + ``IMDnnn_lesion`` (+ ``_roi``)."""
    tree = Tree(base)
    root = base / "PH2Dataset" / "PH2 Dataset images"
    for i in range(n):
        case = f"IMD{3 + i * 7:03d}"
        d = root / case
        style = "bit" if i % 2 else "rgb"  # both kinds occur in the real release
        _pair(tree, "training", case, d / f"{case}_Dermoscopic_Image" / f"{case}.bmp", d / f"{case}_lesion" / f"{case}_lesion.bmp", style, 36, 27, 700 + i)
        save_mask(d / f"{case}_roi" / f"{case}_R1_Label4.bmp", mask_fg(36, 27, 1), "bit")
    (base / "PH2Dataset" / "PH2_dataset.txt").write_text("Name\tClinical Diagnosis\n")
    return tree


BUILDERS = {
    "glas": make_glas_official,
    "kvasir": make_kvasir,
    "cvc-clinicdb": make_cvc,
    "pranet": make_pranet,
    "isic2018": make_isic,
    "ph2": make_ph2,
}


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def prepare_ok(dataset: str, src: Path, out: Path, capsys, *extra: str) -> tuple[dict, str, str]:
    """Run the CLI expecting success; returns (datalist, stdout, stderr)."""
    rc, out_text, err = run([dataset, "--src", src, "--out", out, "--folds", "2", *extra], capsys)
    assert rc == 0, err
    return json.loads((out / "datalist.json").read_text()), out_text, err


def read_mask(path: Path) -> np.ndarray:
    """A written mask as a numpy array (H, W)."""
    with Image.open(path) as im:
        assert im.mode == "L", im.mode
        return np.asarray(im).copy()
