"""Bad input to the dataset preparers (issue 6): every problem is named with its file, and nothing is lost.

Complements ``test_prepare_validation.py`` (missing mask, size mismatch, corrupt file, empty and
non-image files): here each bad input is checked for its message *and* for what it must not cost —
in default mode the bad pair is reported and skipped while every other output is written, and
outputs an earlier run wrote (the bad pair's included) are neither deleted nor rewritten; with
``--strict`` the output folder is left exactly as it was.  Odd but valid pictures (16-bit, grey,
RGBA, palette) are accepted, and masks with any values follow their dataset's documented rule.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

try:
    from prepare_fixtures import BUILDERS, image_array, make_glas_repack, prepare_ok, read_mask, run, save_mask
except ImportError:  # tests/ is a package
    from tests.prepare_fixtures import (
        BUILDERS,
        image_array,
        make_glas_repack,
        prepare_ok,
        read_mask,
        run,
        save_mask,
    )

ISIC_IN = "ISIC2018_Task1-2_Training_Input"
ISIC_GT = "ISIC2018_Task1_Training_GroundTruth"
GLAS_DIR = "Warwick QU Dataset (Released 2016_07_08)"


def snapshot(out: Path) -> dict[str, tuple[int, int, bytes]]:
    """(inode, mtime_ns, bytes) of every file under ``out``: equal snapshots mean nothing was touched."""
    return {
        p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def datalist_of(out: Path) -> dict:
    return json.loads((out / "datalist.json").read_text())


def summary_of(out: Path) -> dict:
    return json.loads((out / "dataset.json").read_text())


def all_ids(out: Path) -> set[tuple[str, str]]:
    dl = datalist_of(out)
    return {(split, item["id"]) for split in ("training", "validation", "test") for item in dl[split]}


def mask_path(dataset: str, image: Path) -> Path:
    """The source mask of a fixture image, per dataset layout."""
    if dataset == "isic2018":
        return image.parent.parent / ISIC_GT / f"{image.stem}_segmentation.png"
    if dataset == "pranet":
        return image.parent.parent / "mask" / image.name
    if dataset == "kvasir":
        return image.parent.parent / "masks" / image.name
    if dataset == "cvc-clinicdb":
        return image.parent.parent / "Ground Truth" / image.name
    if dataset == "glas":
        return image.with_name(f"{image.stem}_anno.bmp")
    raise ValueError(dataset)  # pragma: no cover


def assert_written_as_expected(tree, out: Path, skip: set[tuple[str, str]] = frozenset()) -> None:
    """Every expected pair except ``skip`` is listed and its written mask is the expected foreground."""
    assert all_ids(out) == set(tree.expected) - set(skip)
    for (split, item_id), (_, fg) in tree.expected.items():
        if (split, item_id) not in skip:
            np.testing.assert_array_equal(read_mask(out / "masks" / split / f"{item_id}.png"), fg.astype(np.uint8) * 255)


# ------------------------------------------------------------------ how to break one pair


def _cut(path: Path) -> Path:
    """Keep the header (the file still opens and tells its size), cut the pixel data."""
    data = path.read_bytes()
    start = 0  # where the pixel data begins: keep everything before it
    for marker, skip in ((b"\xff\xda", 16), (b"IDAT", 8)):  # JPEG start of scan, PNG image data
        if marker in data:
            start = data.index(marker) + skip
    path.write_bytes(data[: max(len(data) // 2, start + (len(data) - start) // 2)])
    with Image.open(path) as im:  # the header survived: PIL must fail while decoding, not while opening
        assert im.size[0] > 0
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _text(path: Path) -> Path:
    path.write_text("not an image, just text with an image's name\n")
    return path


def _noisy_mask(path: Path) -> Path:
    """0/128/255: a third of the pixels mid-grey, neither clearly background nor foreground."""
    with Image.open(path) as im:
        w, h = im.size
    values = np.random.default_rng(0).choice(np.array([0, 128, 255], np.uint8), size=(h, w))
    Image.fromarray(values).save(path)
    return path


def _colour_mask(path: Path) -> Path:
    with Image.open(path) as im:
        w, h = im.size
    Image.fromarray(image_array(w, h, 77)).save(path)
    return path


def _small_mask(path: Path) -> Path:
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(path)
    return path


def _huge_image(path: Path) -> Path:
    """A 200x150 picture: over the (monkeypatched) decompression-bomb limit, unlike the fixture's."""
    Image.fromarray(image_array(200, 150, 5)).save(path, format="JPEG" if path.suffix == ".jpg" else None)
    return path


# name: (dataset, which file of the pair, breaker, problem kind, message (image/mask filled in), detail)
# The problem line must start with "problem: <message>" and also contain <detail>.
BAD = {
    "zero-byte JPEG image": ("isic2018", "image", _empty, "unreadable", "cannot read {image}: file is empty", ""),
    "zero-byte PNG image": ("pranet", "image", _empty, "unreadable", "cannot read {image}: file is empty", ""),
    "zero-byte PNG mask": ("isic2018", "mask", _empty, "unreadable", "cannot read {mask}: file is empty", ""),
    "zero-byte TIFF mask": ("cvc-clinicdb", "mask", _empty, "unreadable", "cannot read {mask}: file is empty", ""),
    "zero-byte BMP mask": ("glas", "mask", _empty, "unreadable", "cannot read {mask}: file is empty", ""),
    "truncated JPEG image": (
        "isic2018", "image", _cut, "unreadable", "cannot read {image}: image file is truncated", ""
    ),
    "truncated PNG image": ("pranet", "image", _cut, "unreadable", "cannot read {image}: image file is truncated", ""),
    "truncated PNG mask": ("isic2018", "mask", _cut, "unreadable", "cannot read {mask}: image file is truncated", ""),
    "truncated JPEG mask": ("kvasir", "mask", _cut, "unreadable", "cannot read {mask}: image file is truncated", ""),
    "truncated TIFF mask": (
        "cvc-clinicdb", "mask", _cut, "unreadable", "cannot read {mask}: image file is truncated", ""
    ),
    "text file named like an image": (
        "isic2018", "image", _text, "unreadable", "cannot read {image}: not a recognised image file", ""
    ),
    "mask 0/128/255": (
        "isic2018", "mask", _noisy_mask, "not_binarizable", "mask {mask} cannot be binarized: ",
        "% of pixels are grey (between 64 and 191), not clearly background or foreground",
    ),
    "colour picture as mask": (
        "pranet", "mask", _colour_mask, "not_binarizable", "mask {mask} cannot be binarized: it is a colour image (",
        "expected a black/white mask",
    ),
    "mask of another size": (
        "isic2018", "mask", _small_mask, "size_mismatch",
        "size mismatch: image {image} is 34x26 but mask {mask} is 12x10", "",
    ),
    "huge image": (
        "isic2018", "image", _huge_image, "unreadable",
        "cannot read {image}: Image size (30000 pixels) exceeds limit of 2000 pixels", "decompression bomb",
    ),
}


def _problem_lines(err: str, message: str, detail: str = "") -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith(f"problem: {message}") and detail in ln]


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_pair_is_named_skipped_and_costs_nothing_else(tmp_path, capsys, monkeypatch, case):
    dataset, which, breaker, kind, template, detail = BAD[case]
    if case == "huge image":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses > 2x this; fixture images are < 1000
    tree = BUILDERS[dataset](tmp_path / "src")
    key = sorted(k for k in tree.expected if k[0] == "training")[1]
    image = tree.expected[key][0]
    mask = mask_path(dataset, image)
    assert image.is_file() and mask.is_file()
    out = tmp_path / "out"
    prepare_ok(dataset, tree.root, out, capsys)  # an earlier, good run
    earlier = snapshot(out)
    breaker(image if which == "image" else mask)
    message = template.format(image=image, mask=mask)
    src_before = snapshot(tree.root)

    # --strict: the problem is listed, the run fails, and the output folder is exactly as it was
    rc, _, err = run([dataset, "--src", tree.root, "--out", out, "--folds", "2", "--strict"], capsys)
    assert rc == 1, err
    assert len(_problem_lines(err, message, detail)) == 1, err
    assert "nothing written (--strict)" in err and "Traceback" not in err
    assert snapshot(out) == earlier

    # default mode, same output folder: reported and skipped; no other file rewritten, nothing deleted
    rc, stdout, err = run([dataset, "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 0, err
    assert len(_problem_lines(err, message, detail)) == 1, err
    assert [(p["kind"], p["path"]) for p in summary_of(out)["problems"]["items"]] == [
        (kind, str(image if which == "image" or kind == "size_mismatch" else mask))
    ]
    now = snapshot(out)
    assert set(now) == set(earlier)  # nothing deleted, nothing added
    assert {k for k in now if now[k] != earlier[k]} == {"datalist.json", "dataset.json"}
    bad_output = f"masks/{key[0]}/{key[1]}.png"
    assert now[bad_output] == earlier[bad_output]  # the earlier mask of the now-bad pair is kept as it was
    assert summary_of(out)["kept_outputs"] == {"count": 1, "items": [bad_output]}
    assert "kept 1 files an earlier run wrote for pairs skipped now" in stdout
    assert key not in all_ids(out)
    assert_written_as_expected(tree, out, skip={key})

    # default mode, fresh output folder: every other pair is written
    rc, _, err = run([dataset, "--src", tree.root, "--out", tmp_path / "fresh", "--folds", "2"], capsys)
    assert rc == 0 and len(_problem_lines(err, message, detail)) == 1, err
    assert_written_as_expected(tree, tmp_path / "fresh", skip={key})
    assert not (tmp_path / "fresh" / bad_output).exists()
    assert not list(tmp_path.rglob("*.tmp"))
    assert snapshot(tree.root) == src_before  # the source is never modified


def test_kept_outputs_are_rewritten_once_fixed_and_removed_once_gone(tmp_path, capsys):
    """Regression: a pair that turned unreadable used to have its earlier mask deleted as 'stale'."""
    tree = BUILDERS["isic2018"](tmp_path / "src")
    image = tree.root / ISIC_IN / "ISIC_0000002.jpg"
    mask = mask_path("isic2018", image)
    good_mask = mask.read_bytes()
    out = tmp_path / "out"
    written = out / "masks" / "training" / "ISIC_0000002.png"
    prepare_ok("isic2018", tree.root, out, capsys)
    first = written.read_bytes()

    mask.write_bytes(b"")
    _, stdout, err = prepare_ok("isic2018", tree.root, out, capsys)
    assert f"problem: cannot read {mask}: file is empty" in err
    assert "removed" not in stdout and written.read_bytes() == first

    # fixed with a different mask: rewritten, listed again, no longer "kept"
    fg = np.zeros((26, 34), bool)
    fg[5:20, 3:9] = True
    save_mask(mask, fg, "L255")
    _, stdout, _ = prepare_ok("isic2018", tree.root, out, capsys)
    assert "for pairs skipped now" not in stdout
    np.testing.assert_array_equal(read_mask(written), fg.astype(np.uint8) * 255)
    assert ("training", "ISIC_0000002") in all_ids(out)
    assert summary_of(out)["kept_outputs"] == {"count": 0, "items": []}

    # broken again (kept), then removed from the source for good: now it is stale and removed
    mask.write_bytes(good_mask[:40])
    _, stdout, _ = prepare_ok("isic2018", tree.root, out, capsys)
    assert "kept 1 files" in stdout and written.is_file()
    image.unlink()
    mask.unlink()
    _, stdout, _ = prepare_ok("isic2018", tree.root, out, capsys)
    assert "removed 1 stale files from an earlier run" in stdout
    assert not written.exists()
    assert summary_of(out)["kept_outputs"]["count"] == 0


def test_kept_outputs_include_a_copied_image(tmp_path, capsys):
    tree = BUILDERS["pranet"](tmp_path / "src")
    image = tree.root / "TrainDataset" / "image" / "1.png"
    out = tmp_path / "out"
    prepare_ok("pranet", tree.root, out, capsys, "--copy-images")
    earlier = snapshot(out)
    _cut(image)
    _, stdout, err = prepare_ok("pranet", tree.root, out, capsys, "--copy-images")
    assert f"problem: cannot read {image}: image file is truncated" in err
    assert "kept 2 files" in stdout
    now = snapshot(out)
    assert {k for k in now if now.get(k) != earlier.get(k)} == {"datalist.json", "dataset.json"}
    assert summary_of(out)["kept_outputs"]["items"] == ["images/training/1.png", "masks/training/1.png"]


@pytest.mark.parametrize("what", ["masks deleted", "image folder emptied"])
def test_fatal_error_leaves_the_output_folder_as_it_was(tmp_path, capsys, what):
    tree = BUILDERS["kvasir"](tmp_path / "src")
    out = tmp_path / "out"
    prepare_ok("kvasir", tree.root, out, capsys)
    earlier = snapshot(out)
    folder = tree.root / ("masks" if what == "masks deleted" else "images")
    for f in folder.iterdir():
        f.unlink()
    rc, _, err = run(["kvasir", "--src", tree.root, "--out", out, "--folds", "2"], capsys)
    assert rc == 1
    expected = (
        f"error: no usable training pairs under {tree.root} (6 problems found)"
        if what == "masks deleted"
        else f"error: no images found under {tree.root / 'images'}"
    )
    assert [ln for ln in err.splitlines() if ln.startswith("error: ")] == [expected]
    assert snapshot(out) == earlier


# ------------------------------------------------------------------ odd but valid inputs


def _odd_image(kind: str, rgb: np.ndarray) -> Image.Image:
    if kind == "16-bit grey":
        return Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    if kind == "grey":
        return Image.fromarray(rgb[..., 0])
    if kind == "RGBA":
        return Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]))
    if kind == "palette":
        return Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    raise ValueError(kind)  # pragma: no cover


@pytest.mark.parametrize("kind", ["16-bit grey", "grey", "RGBA", "palette"])
def test_16bit_grey_rgba_and_palette_images_are_accepted_and_copied_unchanged(tmp_path, capsys, kind):
    tree = BUILDERS["pranet"](tmp_path / "src")
    image = tree.root / "TrainDataset" / "image" / "2.png"
    _odd_image(kind, np.asarray(Image.open(image).convert("RGB"))).save(image)
    with Image.open(image) as im:
        assert im.mode == {"16-bit grey": "I;16", "grey": "L", "RGBA": "RGBA", "palette": "P"}[kind]
    out = tmp_path / "out"
    datalist, _, err = prepare_ok("pranet", tree.root, out, capsys, "--copy-images")
    assert "problem" not in err
    assert_written_as_expected(tree, out)
    item = next(i for i in datalist["training"] if i["id"] == "2")
    assert (out / item["image"]).read_bytes() == image.read_bytes()


def _palette(indices: np.ndarray, colours: list[int] | None) -> Image.Image:
    im = Image.fromarray(indices.astype(np.uint8), mode="P")
    if colours is not None:
        im.putpalette(colours)
    return im


PALETTE_MASKS = {
    # name: (palette colours (None: saved without a palette), index of background, index of foreground)
    "black/white": ([0, 0, 0, 255, 255, 255], 0, 1),
    "white/black (inverted order)": ([255, 255, 255, 0, 0, 0], 1, 0),
    "coloured class labels (VOC style)": ([0, 0, 0, 128, 0, 0], 0, 1),
    "no palette": (None, 0, 1),
    "grey ramp 0/1": ([0, 0, 0, 1, 1, 1], 0, 1),
}


@pytest.mark.parametrize("name", list(PALETTE_MASKS), ids=list(PALETTE_MASKS))
def test_palette_masks_binarize_by_label_or_grey_level(tmp_path, capsys, name):
    """Regression: a VOC-style label mask was refused as 'a colour image' and one saved without a
    palette silently became an empty mask; the rule is documented in ``data_scripts.masks``."""
    colours, bg, fg_index = PALETTE_MASKS[name]
    tree = BUILDERS["pranet"](tmp_path / "src")
    mask = tree.root / "TrainDataset" / "mask" / "cju1xyz.png"
    fg = tree.expected[("training", "cju1xyz")][1]
    _palette(np.where(fg, fg_index, bg), colours).save(mask)
    with Image.open(mask) as im:
        assert im.mode == "P"
    out = tmp_path / "out"
    _, _, err = prepare_ok("pranet", tree.root, out, capsys)
    assert "problem" not in err
    assert_written_as_expected(tree, out)


def test_palette_instance_masks_use_the_index(tmp_path, capsys):
    tree = BUILDERS["glas"](tmp_path / "src")
    mask = tree.root / GLAS_DIR / "train_2_anno.bmp"
    fg = tree.expected[("training", "train_2")][1]
    ids = np.where(fg, np.arange(fg.size).reshape(fg.shape) % 3 + 1, 0)
    _palette(ids, [0, 0, 0, 0, 0, 0, 250, 0, 0, 0, 90, 0]).save(mask)  # index 1 is black, as index 0
    with Image.open(mask) as im:
        assert im.mode == "P"
    out = tmp_path / "out"
    prepare_ok("glas", tree.root, out, capsys)
    assert_written_as_expected(tree, out)


@pytest.mark.parametrize(
    ("values", "scale"), [((0, 65535), 65535), ((0, 255), 255), ((0, 1), 1), ((3, 64000), 65535)]
)
def test_16bit_masks(tmp_path, capsys, values, scale):
    tree = BUILDERS["isic2018"](tmp_path / "src")
    mask = tree.root / ISIC_GT / "ISIC_0000001_segmentation.png"
    fg = tree.expected[("training", "ISIC_0000001")][1]
    Image.fromarray(np.where(fg, values[1], values[0]).astype(np.uint16)).save(mask)
    with Image.open(mask) as im:
        assert im.mode == "I;16"
    out = tmp_path / "out"
    _, _, err = prepare_ok("isic2018", tree.root, out, capsys)
    assert "problem" not in err
    assert_written_as_expected(tree, out)


def test_glas_instance_ids_0_to_40_are_all_foreground(tmp_path, capsys):
    tree = BUILDERS["glas"](tmp_path / "src")
    mask = tree.root / GLAS_DIR / "train_3_anno.bmp"
    h, w = 20, 30
    ids = (np.arange(h * w).reshape(h, w) % 41).astype(np.uint8)  # 0..40, ~1/41 background
    Image.fromarray(ids).save(mask)
    out = tmp_path / "out"
    prepare_ok("glas", tree.root, out, capsys)
    np.testing.assert_array_equal(read_mask(out / "masks" / "training" / "train_3.png"), (ids > 0) * 255)


def test_mask_with_a_little_grey_noise_is_thresholded_at_127(tmp_path, capsys):
    tree = BUILDERS["isic2018"](tmp_path / "src")
    mask = tree.root / ISIC_GT / "ISIC_0000003_segmentation.png"
    fg = tree.expected[("training", "ISIC_0000003")][1]
    values = np.where(fg, 255, 0).astype(np.uint8)
    values.flat[::50] = 127  # 2 % of the pixels grey, 4 % in all (tolerance 5 %): 127 is background
    values.flat[7::50] = 128  # and 128 foreground
    Image.fromarray(values).save(mask)
    out = tmp_path / "out"
    _, _, err = prepare_ok("isic2018", tree.root, out, capsys)
    assert "problem" not in err
    np.testing.assert_array_equal(read_mask(out / "masks" / "training" / "ISIC_0000003.png"), (values > 127) * 255)


# ------------------------------------------------------------------ any mask values (hypothesis)


def expected_by_rule(decoded: np.ndarray, rule: str) -> np.ndarray | str:
    """The documented rules (``data_scripts.masks``, ``docs/datasets.md``) on the decoded label image.

    instance: foreground = any channel > 0, never refused.  threshold: full scale 255, or 65535 for a
    16-bit mask holding values > 255; only 0/1 -> 0/1; refused ("colour") when > 1 % of the pixels
    have channels more than a quarter of full scale apart, or ("grey") when > 5 % of the pixels lie
    strictly between a quarter and three quarters of full scale; otherwise foreground = mean of the
    channels above half of full scale (> 127 for 8-bit).
    """
    arr = decoded.astype(np.int64).reshape(decoded.shape[0], decoded.shape[1], -1)
    if rule == "instance":
        return (arr > 0).any(axis=2)
    scale = 255 if decoded.dtype == np.uint8 or arr.max() <= 255 else 65535
    if (arr.max(axis=2) - arr.min(axis=2) > scale / 4).mean() > 0.01:
        return "colour"
    mean = arr.mean(axis=2)
    if set(np.unique(mean)) <= {0, 1}:
        return mean == 1
    if ((mean > scale / 4) & (mean < scale * 3 / 4)).mean() > 0.05:
        return "grey"
    return mean > scale / 2


# dataset, first training pair's image (relative), its mask (relative), mask file format, rule
FORMATS = {
    "glas BMP instance ids": ("glas", f"{GLAS_DIR}/train_1.bmp", f"{GLAS_DIR}/train_1_anno.bmp", "u8", "instance"),
    "glas PNG 16-bit instance ids": (
        "glas-repack", "Train_Folder/img/1.png", "Train_Folder/labelcol/1.png", "u16", "instance"
    ),
    "pranet PNG grey": ("pranet", "TrainDataset/image/cju0xyz.png", "TrainDataset/mask/cju0xyz.png", "u8", "threshold"),
    "cvc TIFF grey": ("cvc-clinicdb", "Original/1.tif", "Ground Truth/1.tif", "u8", "threshold"),
    "isic PNG 16-bit": (
        "isic2018", f"{ISIC_IN}/ISIC_0000001.jpg", f"{ISIC_GT}/ISIC_0000001_segmentation.png", "u16", "threshold"
    ),
    "kvasir RGB JPEG": ("kvasir", "images/cju00abc000.jpg", "masks/cju00abc000.jpg", "jpeg", "threshold"),
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One fake tree per format, built once; the examples overwrite one mask in it."""
    base = tmp_path_factory.mktemp("trees")
    builders = {**BUILDERS, "glas-repack": make_glas_repack}
    return {name: builders[name](base / name).root for name in {f[0] for f in FORMATS.values()}}


def _values(fmt: str) -> st.SearchStrategy[int]:
    top = 65535 if fmt == "u16" else 255
    q = top // 4
    return st.one_of(st.integers(0, 1), st.integers(0, q), st.integers(top - q, top), st.integers(0, top))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), name=st.sampled_from(sorted(FORMATS)), seed=st.integers(0, 2**16))
def test_masks_with_any_values_follow_the_dataset_rule(trees, capsys, data, name, seed):
    dataset, image_rel, mask_rel, fmt, rule = FORMATS[name]
    root = trees[dataset]
    values = data.draw(st.lists(_values(fmt), min_size=1, max_size=5, unique=True), label="values")
    weights = data.draw(st.lists(st.integers(1, 30), min_size=len(values), max_size=len(values)), label="weights")
    with Image.open(root / image_rel) as im:
        w, h = im.size
    p = np.array(weights, float) / sum(weights)
    labels = np.random.default_rng(seed).choice(np.array(values), size=(h, w), p=p)
    mask = root / mask_rel
    if fmt == "jpeg":
        grey = labels.astype(np.uint8)
        Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(mask, format="JPEG", quality=90)
    else:
        Image.fromarray(labels.astype(np.uint16 if fmt == "u16" else np.uint8)).save(mask)
    with Image.open(mask) as im:
        decoded = np.asarray(im)  # what was really stored (JPEG: with its compression noise)
    expected = expected_by_rule(decoded, rule)
    event(f"{rule}: {expected if isinstance(expected, str) else 'accepted'}")
    out = Path(tempfile.mkdtemp(dir=root.parent))
    try:
        cli = "glas" if dataset == "glas-repack" else dataset
        rc, _, err = run([cli, "--src", root, "--out", out, "--folds", "2"], capsys)
        assert rc == 0, err
        item_id = {"glas": "train_1", "glas-repack": "1", "pranet": "cju0xyz", "cvc-clinicdb": "1",
                   "isic2018": "ISIC_0000001", "kvasir": "cju00abc000"}[dataset]
        if isinstance(expected, str):
            reason = "it is a colour image" if expected == "colour" else "% of pixels are grey (between "
            assert f"problem: mask {mask} cannot be binarized: " in err and reason in err, err
            assert ("training", item_id) not in all_ids(out)
        else:
            assert "problem" not in err, err
            np.testing.assert_array_equal(read_mask(out / "masks" / "training" / f"{item_id}.png"), expected * 255)
    finally:
        shutil.rmtree(out, ignore_errors=True)
