"""Folders: mixed and corrupt inputs, inputs never overwritten, atomic outputs, the command's exits."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
from infer_fixtures import bright_checkpoint, picture, random_checkpoint, write_dicom_series

from medseg_masksup.commands import infer
from medseg_masksup.inference.folder import run_folder

BOX = (slice(4, 14), slice(20, 34))


def _digest(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def mixed(tmp_path):
    """good PNG, corrupt PNG, text file, NIfTI in a sub-folder, a DICOM series, a corrupt DICOM, same-stem pair."""
    import nibabel as nib
    from PIL import Image

    src = tmp_path / "scans"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(picture(24, 40, BOX)).save(src / "good.png")
    Image.fromarray(picture(24, 40, BOX, channels=1)).save(src / "good.jpg")  # same stem as good.png
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (src / "notes.txt").write_text("scanner notes")
    (src / ".hidden.png").write_bytes(b"ignored")
    volume = np.random.default_rng(0).uniform(0, 40, (40, 24, 2)).astype(np.float32)
    volume[20:34, 4:14] = 250
    nib.save(nib.Nifti1Image(volume, np.eye(4)), src / "sub" / "vol.nii.gz")
    series = np.random.default_rng(1).uniform(0, 300, (3, 24, 40)).astype(np.int16)
    series[:, 4:14, 20:34] = 1000
    write_dicom_series(src / "series", series)
    (src / "series" / "zz_broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")
    return src


def test_mixed_folder_processes_all_good_files_and_reports_bad_ones(mixed, tmp_path, capsys):
    before = _digest(mixed)
    out = tmp_path / "out"
    code = infer.main(["--input", str(mixed), "--output_dir", str(out), "--ckpt", str(bright_checkpoint()), "--no_progress"])
    assert code == 0  # some inputs failed, the others were written
    err = capsys.readouterr().err
    assert f"error: {mixed / 'corrupt.png'}: cannot be read as an image" in err
    assert f"error: {mixed / 'series' / 'zz_broken.dcm'}: cannot be read as DICOM" in err
    assert f"skipped: {mixed / 'notes.txt'}: not a supported image format" in err
    assert "Traceback" not in err
    assert _digest(mixed) == before  # inputs untouched
    rows = {r["case"]: r for r in csv.DictReader(open(out / "summary.csv"))}
    assert {k: v["status"] for k, v in rows.items()} == {
        "good": "ok", "good_png": "ok", "corrupt": "error", "notes": "skipped", "series": "ok",
        "series/zz_broken": "error", "sub/vol": "ok"}
    assert rows["good"]["source"] == str(mixed / "good.jpg")  # names clash: the later file gets its suffix
    for name in ("good_mask.png", "good_png_mask.png", "good_overlay.png", "series_mask.nii.gz", "sub/vol_mask.nii.gz"):
        assert (out / name).is_file(), name
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no temporary files left behind
    assert int(rows["good"]["foreground_px"]) > 0 and rows["corrupt"]["message"].startswith(str(mixed / "corrupt.png"))
    # the summary records the mode actually used (the bright model was trained on whole images), never "auto"
    assert json.loads((out / "summary.json").read_text())["options"]["mode"] == "resize"


def test_output_folder_equal_to_input_is_refused(mixed, capsys):
    before = _digest(mixed)
    code = infer.main(["--input", str(mixed), "--output_dir", str(mixed), "--ckpt", str(bright_checkpoint())])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (f"medseg-masksup infer: error: output folder {mixed} is the input folder; "
                           "choose another --output_dir so inputs are never overwritten")
    assert _digest(mixed) == before


def test_output_that_would_overwrite_an_input_is_refused(tmp_path):
    from PIL import Image

    src = tmp_path / "in"
    (src / "in").mkdir(parents=True)
    Image.fromarray(picture(24, 40, BOX)).save(src / "in" / "a.png")
    Image.fromarray(picture(24, 40, BOX)).save(src / "a_mask.png")  # where in/a.png's mask would go with output tmp/
    Image.fromarray(picture(24, 40, BOX)).save(src / "b.png")
    before = _digest(src)
    report = run_folder(src, tmp_path, bright_checkpoint(), progress=False, verbose=False)
    rows = {r["case"]: r for r in report.rows}
    assert rows["in/a"]["status"] == "error"
    assert rows["in/a"]["message"] == f"{tmp_path / 'in' / 'a_mask.png'}: output would overwrite an input file; choose another --output_dir"
    assert rows["b"]["status"] == "ok" and (tmp_path / "b_mask.png").is_file()
    assert _digest(src) == before


def test_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    from PIL import Image

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(picture(24, 40, BOX)).save(src / "a.png")
    for run in range(2):  # the second run must not segment the first run's masks
        report = run_folder(src, src / "masks", bright_checkpoint(), progress=False, verbose=False, overwrite=run > 0)
        assert [r["case"] for r in report.rows] == ["a"]


def test_nothing_readable_exits_1_with_each_reason(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.png").write_bytes(b"nope")
    (src / "y.nii.gz").write_bytes(b"nope")
    code = infer.main(["--input", str(src), "--output_dir", str(tmp_path / "out"), "--ckpt", str(bright_checkpoint()), "--no_progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{src / 'x.png'}: cannot be read as an image" in err and f"{src / 'y.nii.gz'}: cannot be read as NIfTI" in err
    assert f"medseg-masksup infer: error: nothing could be segmented in {src}" in err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["cases"][0]["status"] == "error"


def test_strict_fails_on_any_error(mixed, tmp_path):
    code = infer.main(["--input", str(mixed), "--output_dir", str(tmp_path / "o"), "--ckpt", str(bright_checkpoint()),
                       "--no_progress", "--strict"])
    assert code == 1


@pytest.mark.parametrize(
    "args, message",
    [(["--ckpt", "{tmp}/missing.pt"], "error: checkpoint not found: {tmp}/missing.pt"),
     (["--ckpt", "{tmp}/junk.pt"], "error: {tmp}/junk.pt: not a readable PyTorch checkpoint"),
     (["--ckpt", "{tmp}/norecord.pt"], "error: {tmp}/norecord.pt: no 'training_record'"),
     (["--ckpt", "{tmp}/wrong.pt"], "error: {tmp}/wrong.pt: weights do not fit a unet/base network"),
     (["--input", "{tmp}/nowhere"], "error: input not found: {tmp}/nowhere"),
     (["--threshold", "1.5"], "error: threshold must lie strictly between 0 and 1, got 1.5")],
)
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    import torch
    from PIL import Image

    Image.fromarray(picture(24, 40, BOX)).save(tmp_path / "a.png")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"model": {}}, tmp_path / "norecord.pt")
    small = torch.load(random_checkpoint(tmp_path / "small.pt"), weights_only=True)
    small["training_record"]["network_size"] = "base"
    torch.save(small, tmp_path / "wrong.pt")
    base = {"--input": str(tmp_path / "a.png"), "--output_dir": str(tmp_path / "out"), "--ckpt": str(bright_checkpoint())}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value.format(tmp=tmp_path)
    code = infer.main([x for kv in base.items() for x in kv] + ["--no_progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("medseg-masksup infer: " + message.format(tmp=tmp_path))


def _two_pictures(folder):
    from PIL import Image

    folder.mkdir(parents=True)
    for name in ("a", "b"):
        Image.fromarray(picture(24, 40, BOX)).save(folder / f"{name}.png")


@pytest.mark.integration
def test_reused_output_folder_is_refused_and_overwrite_leaves_exactly_the_new_results(tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    _two_pictures(src)
    base = ["--input", str(src), "--output_dir", str(out), "--ckpt", str(bright_checkpoint()), "--no_progress"]
    assert infer.main(base) == 0
    (src / "b.png").unlink()  # the next run sees only a.png: b's results are stale
    earlier = _digest(out)
    capsys.readouterr()
    assert infer.main(base) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"medseg-masksup infer: error: output folder {out} holds results of an earlier run (a_mask.png, "
                   "a_overlay.png, b_mask.png and 3 more); choose another --output_dir, or pass --overwrite to replace them")
    assert _digest(out) == earlier  # nothing lost

    assert infer.main([*base, "--overwrite"]) == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    masks = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_mask.*"))
    assert masks == sorted(r["mask"] for r in rows) == ["a_mask.png"]  # the summary describes exactly the masks
    assert not (out / "b_overlay.png").exists()


def test_unwritable_output_folder_is_refused_before_any_work(tmp_path, capsys):
    src = tmp_path / "in"
    _two_pictures(src)
    (tmp_path / "file").write_text("a file where a folder would have to be")  # unwritable, for root too
    out = tmp_path / "file" / "out"
    code = infer.main(["--input", str(src), "--output_dir", str(out), "--ckpt", str(tmp_path / "missing.pt"), "--no_progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    # refused before the checkpoint is even read (it does not exist either)
    assert err == f"medseg-masksup infer: error: output folder {out} is not writable (Not a directory); choose another --output_dir"
