"""Issue 20 item 1: ``infer --overwrite`` removes exactly the files an earlier run wrote (its manifest says
which, with their size and SHA-256), never a file it did not write: a user's ground truth or hand-made mask in
the output folder, a result changed since, a folder written by another program or an older version."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from infer_fixtures import picture, random_checkpoint
from PIL import Image

from medseg_masksup.commands import infer

PREFIX = "medseg-masksup infer: error: "
BOX = (slice(4, 14), slice(20, 34))
MANIFEST = ".medseg-masksup-manifest.jsonl"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", seed=5)


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def pictures(folder: Path, names=("a", "b")) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        Image.fromarray(picture(24, 40, BOX)).save(folder / f"{name}.png")
    return folder


def command(src: Path, out: Path, ckpt: Path, *extra: str) -> list[str]:
    return ["--input", str(src), "--output_dir", str(out), "--ckpt", str(ckpt), "--no_progress", *extra]


def test_overwrite_keeps_files_the_earlier_run_did_not_write(tmp_path, ckpt, capsys):
    """The reported loss: a ground-truth ``labels/case_mask.png`` and a hand-made ``my_manual_mask.png`` kept
    in the output folder were deleted by ``--overwrite`` (every ``*_mask.*`` went)."""
    src, out = pictures(tmp_path / "in"), tmp_path / "out"
    assert infer.main(command(src, out, ckpt)) == 0
    (out / "labels").mkdir()
    (out / "labels" / "case_mask.png").write_bytes(b"ground truth drawn by a radiologist")
    (out / "my_manual_mask.png").write_bytes(b"hand-made mask")
    (out / "notes_overlay.png").write_bytes(b"someone's own overlay")
    mine = {k: v for k, v in digest(out).items() if k in ("labels/case_mask.png", "my_manual_mask.png", "notes_overlay.png")}
    (src / "b.png").unlink()  # b's results of the first run are stale now
    capsys.readouterr()

    assert infer.main(command(src, out, ckpt, "--overwrite")) == 0, capsys.readouterr().err
    now = digest(out)
    assert {k: now.get(k) for k in mine} == mine  # nothing the program did not write is touched
    assert not (out / "b_mask.png").exists() and not (out / "b_overlay.png").exists()  # the earlier run's: gone
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["mask"] for r in rows] == ["a_mask.png"]
    listed = [json.loads(line)["path"] for line in (out / MANIFEST).read_text().splitlines()[1:]]
    assert sorted(listed) == ["a_mask.png", "a_overlay.png", "summary.csv", "summary.json"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_results_without_a_manifest_are_never_deleted(tmp_path, ckpt, capsys, overwrite):
    """Result-looking files of another program or of a version before manifests: refused, with or without
    ``--overwrite``, and the message does not suggest ``--overwrite`` (it would not help)."""
    src, out = pictures(tmp_path / "in"), tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    for name in ("a_mask.png", "a_overlay.png", "summary.csv", "sub/case_mask.nii.gz"):
        (out / name).write_bytes(b"written by someone else")
    before = digest(out)
    code = infer.main(command(src, out, ckpt, *(["--overwrite"] if overwrite else [])))
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"{PREFIX}output folder {out} holds files that look like results but were not written by this program, "
        "or were written by a version that kept no record of its outputs (a_mask.png, a_overlay.png, "
        "sub/case_mask.nii.gz and 1 more); they are never deleted: move them away or choose another --output_dir"]
    assert "--overwrite" not in err
    assert digest(out) == before


@pytest.mark.integration
def test_a_result_changed_since_the_earlier_run_is_kept(tmp_path, ckpt, capsys):
    """A mask the user edited after the run is no longer that run's output: --overwrite keeps it, the refusal
    says so, and the new mask of that input is not written over it."""
    src, out = pictures(tmp_path / "in"), tmp_path / "out"
    assert infer.main(command(src, out, ckpt)) == 0
    (out / "a_mask.png").write_bytes(b"hand-edited mask")
    capsys.readouterr()

    assert infer.main(command(src, out, ckpt)) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"{PREFIX}output folder {out} holds results of an earlier run (a_overlay.png, b_mask.png, b_overlay.png "
        "and 2 more); choose another --output_dir, or pass --overwrite to replace them (--overwrite keeps "
        "a_mask.png: changed since that run wrote it)"]

    assert infer.main(command(src, out, ckpt, "--overwrite")) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"note: output folder {out}: kept 1 file an earlier run wrote and that was changed since (a_mask.png); "
        "it is never replaced",
        f"error: {out / 'a_mask.png'}: not replaced: this file was not written by this run (changed since an "
        "earlier run wrote it, or written by someone else); move it away or choose another --output_dir"]
    assert (out / "a_mask.png").read_bytes() == b"hand-edited mask"
    rows = {r["case"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert rows["a"]["status"] == "error" and rows["b"]["status"] == "ok"


@pytest.mark.integration
def test_a_manifest_entry_outside_the_folder_is_never_deleted(tmp_path, ckpt):
    """An edited manifest cannot make --overwrite delete outside the output folder, even with a matching hash."""
    src, out = pictures(tmp_path / "in", ("a",)), tmp_path / "out"
    assert infer.main(command(src, out, ckpt)) == 0
    victim = tmp_path / "victim_mask.png"
    victim.write_bytes(b"precious")
    entry = {"path": "../victim_mask.png", "size": 8, "sha256": hashlib.sha256(b"precious").hexdigest()}
    with (out / MANIFEST).open("a") as manifest:
        manifest.write(json.dumps(entry) + "\n")
    assert infer.main(command(src, out, ckpt, "--overwrite")) == 0
    assert victim.read_bytes() == b"precious"
