"""Bad input to inference (issue 6): each bad file is named with its problem, the others are still
segmented, inputs are never modified, and outputs already in ``--output_dir`` are never lost.

Complements ``test_infer_folder.py`` / ``test_infer_io.py`` (corrupt PNG/DICOM/NIfTI/NRRD, 4D NIfTI
read directly, output folder = input folder).  A random-weight checkpoint is enough here: odd
picture modes are checked against the plain RGB picture of the same content (same probabilities),
not against a ground truth.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from infer_fixtures import ct_header, random_checkpoint, write_dicom_series
from PIL import Image

from medseg_masksup.commands import infer
from medseg_masksup.checkpoint import CheckpointError, read_checkpoint
from medseg_masksup.inference.folder import run_folder

REPO = Path(__file__).resolve().parents[1]
H, W = 24, 40
PREFIX = "medseg-masksup infer: error: "


def digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    """(inode, mtime_ns, sha256) per file: equal snapshots mean nothing was rewritten or deleted."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def written_by_a_run(out: Path, *names: str) -> None:
    """Record ``names`` (under ``out``) in its manifest, as an earlier ``infer`` run does for what it wrote."""
    from medseg_masksup.io.manifest import ManifestWriter

    manifest = ManifestWriter(out, {"command": "infer"})
    for name in names:
        manifest.add(out / name, out / name)
    manifest.close()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", seed=3)


def grey_picture() -> np.ndarray:
    """(H, W) uint8 with few levels spanning 0..255 (so palettes and 16-bit scaling are exact)."""
    g = np.full((H, W), 30, np.uint8)
    g[4:14, 20:34] = 230
    g[10:20, 2:8] = 120
    g[0, 0], g[-1, -1] = 0, 255
    return g


def dicom_without_pixels(path: Path) -> Path:
    """A well-formed CT header with no PixelData element (pydicom)."""
    from pydicom.uid import generate_uid

    ds = ct_header(generate_uid(), generate_uid(), "Test^NoPixels", "0002")
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 8, 8, 16, 1
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _cut(path: Path) -> None:
    """Keep the header (the file opens and tells its size), cut the pixel data."""
    data = path.read_bytes()
    start = data.index(b"\xff\xda") + 16 if path.suffix == ".jpg" else data.index(b"IDAT") + 8
    path.write_bytes(data[: start + (len(data) - start) // 2])
    with Image.open(path) as im:
        assert im.size == (W, H)


# ------------------------------------------------------------------ odd but valid pictures


def test_grey_16bit_rgba_grey_alpha_and_palette_pictures_are_segmented_like_rgb(tmp_path, ckpt):
    g = grey_picture()
    rgb = np.repeat(g[..., None], 3, axis=2)
    src = tmp_path / "in"
    src.mkdir()
    pictures = {
        "rgb": Image.fromarray(rgb),
        "grey": Image.fromarray(g),
        "grey16": Image.fromarray(g.astype(np.uint16) * 257),
        "rgba": Image.fromarray(np.dstack([rgb, np.full((H, W), 255, np.uint8)])),
        "grey_alpha": Image.fromarray(np.dstack([g, np.full((H, W), 255, np.uint8)]), mode="LA"),
        "palette": Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8),
        "palette_transparent": Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8),
    }
    pictures["palette_transparent"].info["transparency"] = 255  # an unused index: nothing is transparent
    for name, image in pictures.items():
        image.save(src / f"{name}.png", **({"transparency": 255} if name == "palette_transparent" else {}))
    modes = {name: Image.open(src / f"{name}.png").mode for name in pictures}
    assert modes == {"rgb": "RGB", "grey": "L", "grey16": "I;16", "rgba": "RGBA", "grey_alpha": "LA",
                     "palette": "P", "palette_transparent": "P"}
    before = digest(src)
    report = run_folder(src, tmp_path / "out", ckpt, save_prob=True, progress=False, verbose=False)
    assert {r["case"]: r["status"] for r in report.rows} == dict.fromkeys(pictures, "ok")
    reference = np.asarray(Image.open(tmp_path / "out" / "rgb_prob.png"), dtype=int)
    assert reference.std() > 5  # the random network's output depends on the picture
    for name in pictures:
        for suffix in ("mask", "overlay", "prob"):
            with Image.open(tmp_path / "out" / f"{name}_{suffix}.png") as out:
                assert out.size == (W, H), (name, suffix)
        prob = np.asarray(Image.open(tmp_path / "out" / f"{name}_prob.png"), dtype=int)
        assert np.abs(prob - reference).max() <= 1, name  # same content read, same orientation
        mask = np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png"))
        assert set(np.unique(mask)) <= {0, 255}
    assert digest(src) == before


# ------------------------------------------------------------------ a folder with bad files


@pytest.fixture
def bad_folder(tmp_path):
    """Good pictures next to every kind of bad input; returns (folder, {name: expected stderr line start})."""
    import nibabel as nib

    src = tmp_path / "in"
    (src / "scans").mkdir(parents=True)
    g = grey_picture()
    Image.fromarray(g).save(src / "good.png")
    Image.fromarray(np.repeat(g[..., None], 3, axis=2)).save(src / "scans" / "good2.jpg", quality=95)
    (src / "zero.png").write_bytes(b"")
    (src / "empty.nii.gz").write_bytes(b"")
    Image.fromarray(g).save(src / "cut.png")
    _cut(src / "cut.png")
    Image.fromarray(np.repeat(g[..., None], 3, axis=2)).save(src / "cut_jpeg.jpg", quality=95)
    _cut(src / "cut_jpeg.jpg")
    (src / "fake.png").write_text("a text file with an image's name\n")
    (src / "notes.txt").write_text("scanner notes\n")
    (src / "table.csv").write_text("a,b\n1,2\n")
    Image.fromarray(np.zeros((60, 50), np.uint8)).save(src / "huge.png")  # 3000 px: over the patched limit
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 2), np.float32), np.eye(4)), src / "scans" / "t4.nii.gz")
    dicom_without_pixels(src / "scans" / "nopixels.dcm")
    volume = np.random.default_rng(1).uniform(0, 300, (3, 12, 16)).astype(np.int16)
    write_dicom_series(src / "series", volume)
    dicom_without_pixels(src / "series" / "zz_header_only.dcm")  # a header-only object beside a series
    expected = {
        "zero": f"error: {src / 'zero.png'}: file is empty",
        "empty": f"error: {src / 'empty.nii.gz'}: file is empty",
        "cut": f"error: {src / 'cut.png'}: cannot be read as an image (OSError: Truncated File Read)",
        "cut_jpeg": f"error: {src / 'cut_jpeg.jpg'}: cannot be read as an image (OSError: image file is truncated",
        "fake": f"error: {src / 'fake.png'}: cannot be read as an image (UnidentifiedImageError: cannot identify image file",
        "notes": f"skipped: {src / 'notes.txt'}: not a supported image format",
        "table": f"skipped: {src / 'table.csv'}: not a supported image format",
        "huge": (f"error: {src / 'huge.png'}: cannot be read as an image (DecompressionBombError: "
                 "Image size (3000 pixels) exceeds limit of 2000 pixels"),
        "scans/t4": (f"error: {src / 'scans' / 't4.nii.gz'}: 4D NIfTI of shape (8, 8, 4, 2) is not supported "
                     "(give a 2D image or a 3D volume; split time series / multi-channel files first)"),
        "scans/nopixels": (f"error: {src / 'scans' / 'nopixels.dcm'}: DICOM file without pixel data (no PixelData "
                           "element: a header-only object, e.g. a report or a structure set, not an image)"),
        "series/zz_header_only": f"error: {src / 'series' / 'zz_header_only.dcm'}: DICOM file without pixel data",
    }
    return src, expected


def test_every_bad_file_is_named_and_the_others_are_segmented(bad_folder, tmp_path, ckpt, capsys, monkeypatch):
    src, expected = bad_folder
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL refuses > 2x this; the good pictures have 960
    out = tmp_path / "out"
    out.mkdir()
    # outputs of an earlier run: of another input, and of an input that is broken now
    Image.fromarray(np.full((5, 5), 255, np.uint8)).save(out / "other_mask.png")
    (out / "zero_mask.png").write_bytes(b"earlier mask of zero.png, when it was still a picture")
    (out / "scans").mkdir()
    (out / "scans" / "t4_mask.nii.gz").write_bytes(b"earlier result")
    written_by_a_run(out, "other_mask.png", "zero_mask.png", "scans/t4_mask.nii.gz")
    earlier = snapshot(out)
    inputs = digest(src)

    command = ["--input", str(src), "--output_dir", str(out), "--ckpt", str(ckpt), "--no_progress"]
    assert infer.main(command) == 2  # the folder holds an earlier run's results: refused, nothing touched
    assert capsys.readouterr().err.strip().startswith(f"{PREFIX}output folder {out} holds results of an earlier run")
    assert snapshot(out) == earlier

    code = infer.main([*command, "--overwrite"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    rows = {r["case"]: r for r in json.loads((out / "summary.json").read_text())["cases"]}
    for case, start in expected.items():
        assert sum(line.startswith(start) for line in lines) == 1, (case, start, err)
        assert rows[case]["status"] == start.split(":")[0], case
        assert rows[case]["message"] == next(ln for ln in lines if ln.startswith(start)).split(": ", 1)[1]
    assert {c for c, r in rows.items() if r["status"] == "ok"} == {"good", "scans/good2", "series"}
    assert len(lines) == len(expected)  # nothing else reported

    for name in ("good_mask.png", "good_overlay.png", "scans/good2_mask.png", "series_mask.nii.gz"):
        assert (out / name).is_file(), name
    with Image.open(out / "good_mask.png") as im:
        assert im.size == (W, H)
    now = snapshot(out)  # --overwrite: the earlier results are gone, the folder holds exactly this run's
    assert set(now) == {".medseg-masksup-manifest.jsonl", "good_mask.png", "good_overlay.png", "scans/good2_mask.png", "scans/good2_overlay.png",
                    "series_mask.nii.gz", "series_overlay.png", "summary.csv", "summary.json"}
    assert digest(src) == inputs  # inputs never modified


def test_dicom_without_pixel_data_alone(tmp_path, ckpt, capsys):
    path = dicom_without_pixels(tmp_path / "in" / "header_only.dcm")
    code = infer.main(["--input", str(path), "--output_dir", str(tmp_path / "out"), "--ckpt", str(ckpt), "--no_progress"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert err == [
        (f"error: {path}: DICOM file without pixel data (no PixelData element: a header-only object, "
         "e.g. a report or a structure set, not an image)"),
        f"{PREFIX}nothing could be segmented in {path}",
    ]


@pytest.mark.parametrize("content", ["nothing", "hidden and ignored files only"])
def test_empty_input_folder_is_one_line_and_writes_nothing(tmp_path, ckpt, capsys, content):
    src = tmp_path / "in"
    src.mkdir()
    if content != "nothing":
        (src / ".DS_Store").write_bytes(b"\0\1")
        (src / "Thumbs.db").write_bytes(b"\0\1")
        (src / ".hidden").mkdir()
        Image.fromarray(grey_picture()).save(src / ".hidden" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old_mask.png").write_bytes(b"earlier output")
    written_by_a_run(out, "old_mask.png")
    earlier = snapshot(out)
    code = infer.main(["--input", str(src), "--output_dir", str(out), "--ckpt", str(ckpt), "--no_progress",
                       "--overwrite"])  # even so: earlier results are removed only once there is work to do
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"{PREFIX}{src}: no files found"]
    assert snapshot(out) == earlier


def test_folder_of_non_image_files_only(tmp_path, ckpt, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "readme.txt").write_text("hello")
    (src / "data.json").write_text("{}")
    out = tmp_path / "out"
    code = infer.main(["--input", str(src), "--output_dir", str(out), "--ckpt", str(ckpt), "--no_progress"])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"skipped: {src / 'data.json'}: not a supported image format",
        f"skipped: {src / 'readme.txt'}: not a supported image format",
        f"{PREFIX}nothing could be segmented in {src}",
    ]
    assert sorted(p.name for p in out.iterdir()) == [".medseg-masksup-manifest.jsonl", "summary.csv", "summary.json"]


# ------------------------------------------------------------------ checkpoints


def _checkpoints(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the whole expected error line after the prefix)."""
    from medseg_masksup.networks import build_network

    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    files = {
        "zero-byte": folder / "zero.pt",
        "truncated": folder / "cut.pt",
        "foreign dict": folder / "foreign.pt",
        "foreign list": folder / "list.pt",
        "pickled module": folder / "module.pt",
        "run folder with zero-byte model.pt": folder / "run",
    }
    files["zero-byte"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {"w": torch.ones(1)}, "epoch": 3}, files["foreign dict"])
    torch.save([torch.ones(2)], files["foreign list"])
    torch.save(build_network("unet"), files["pickled module"])
    (folder / "run").mkdir()
    (folder / "run" / "model.pt").write_bytes(b"")
    messages = {
        "zero-byte": "{path}: not a readable PyTorch checkpoint (the file is empty, 0 bytes)",
        "truncated": (
            "{path}: not a readable PyTorch checkpoint "
            "(PytorchStreamReader failed reading zip archive: failed finding central directory.)"
        ),
        "foreign dict": (
            "{path}: no 'model' weights (found ['epoch', 'state_dict']); "
            "expected a checkpoint written by medseg-masksup training"
        ),
        "foreign list": "checkpoint {path} is not a medseg-masksup checkpoint (it holds a list)",
        "pickled module": (
            "{path}: not a readable PyTorch checkpoint (it holds pickled Python objects, not only weights "
            "(e.g. a whole model object); refused because loading it could run code)"
        ),
        "run folder with zero-byte model.pt": "{path}/model.pt: not a readable PyTorch checkpoint (the file is empty, 0 bytes)",
    }
    return {name: (files[name], message.format(path=files[name])) for name, message in messages.items()}


CHECKPOINT_CASES = ["zero-byte", "truncated", "foreign dict", "foreign list", "pickled module",
                    "run folder with zero-byte model.pt"]


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_unusable_checkpoint_is_one_line_exit_2_and_writes_nothing(tmp_path, ckpt, capsys, case):
    path, message = _checkpoints(tmp_path / "ckpts", ckpt)[case]
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(grey_picture()).save(src / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_mask.png").write_bytes(b"earlier output")
    written_by_a_run(out, "a_mask.png")
    earlier, inputs, ckpts = snapshot(out), digest(src), digest(tmp_path / "ckpts")
    code = infer.main(["--input", str(src), "--output_dir", str(out), "--ckpt", str(path), "--no_progress",
                       "--overwrite"])  # even so: a bad checkpoint removes no earlier result
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [PREFIX + message]
    assert "\x1b" not in err and "Traceback" not in err
    assert snapshot(out) == earlier and digest(src) == inputs and digest(tmp_path / "ckpts") == ckpts


def test_read_checkpoint_uses_the_shared_loader(tmp_path, ckpt, monkeypatch):
    """read_checkpoint reads the file through the one loader, medseg_masksup.checkpoint.load_checkpoint."""
    import medseg_masksup.checkpoint as shared

    calls = []
    real = shared.load_checkpoint

    def spy(path, *args, **kwargs):
        calls.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shared, "load_checkpoint", spy)
    weights, record, resolved = read_checkpoint(ckpt.parent)
    assert calls == [ckpt] and resolved == ckpt and isinstance(weights, dict) and weights and record.img_size
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt: not a readable PyTorch checkpoint \(.+\)$"):
        read_checkpoint(tmp_path / "junk.pt")
    assert calls[-1] == tmp_path / "junk.pt"


@pytest.mark.integration
def test_command_line_exit_code_for_a_zero_byte_checkpoint(tmp_path):
    """The installed entry point (not just ``main``): exit status 2, one line, no traceback."""
    (tmp_path / "model.pt").write_bytes(b"")
    Image.fromarray(grey_picture()).save(tmp_path / "a.png")
    proc = subprocess.run(
        [sys.executable, "-m", "medseg_masksup.cli", "infer", "--input", str(tmp_path / "a.png"),
         "--output_dir", str(tmp_path / "out"), "--ckpt", str(tmp_path), "--no_progress"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"{PREFIX}{tmp_path / 'model.pt'}: not a readable PyTorch checkpoint (the file is empty, 0 bytes)"]
    assert not (tmp_path / "out").exists()
