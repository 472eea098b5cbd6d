"""Issue 20 item 7: a disk that fills up or an output folder that vanishes during ``infer``: one line naming the
path (no traceback), everything already written intact, and the summary says per case what was written and
what was not. The disk is filled by a writer that raises ``OSError(ENOSPC)`` (no root, no tmpfs)."""

from __future__ import annotations

import csv
import errno
import os
import shutil
from pathlib import Path

import pytest
from infer_fixtures import picture, random_checkpoint
from PIL import Image

import medseg_masksup.io.overlay as overlay
import medseg_masksup.io.summary as summary
from medseg_masksup.commands import infer
from medseg_masksup.io.atomic import atomic_target

PREFIX = "medseg-masksup infer: error: "
FULL = os.strerror(errno.ENOSPC)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", seed=11)


@pytest.fixture
def run(tmp_path, ckpt):
    src = tmp_path / "in"
    src.mkdir()
    for name in "abcd":
        Image.fromarray(picture(24, 40, (slice(4, 14), slice(20, 34)), seed=ord(name))).save(src / f"{name}.png")
    out = tmp_path / "out"
    return out, ["--input", str(src), "--output_dir", str(out), "--ckpt", str(ckpt), "--no_progress"]


def _fill_disk_at(monkeypatch, name: str, action=None) -> None:
    """From the overlay ``name`` on, overlays fail half-written with ENOSPC (or ``action`` runs first)."""
    real = overlay.write_overlay

    def write_overlay(case, mask, path, *args, **kwargs):
        if Path(path).name >= name:
            if action is not None:
                action(Path(path))
                return real(case, mask, path, *args, **kwargs)
            with atomic_target(path) as tmp:
                tmp.write_bytes(b"half a PNG")
                raise OSError(errno.ENOSPC, FULL)
        return real(case, mask, path, *args, **kwargs)

    monkeypatch.setattr(overlay, "write_overlay", write_overlay)


def _no_temporary_files(out: Path) -> bool:
    return not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_disk_full_stops_in_one_line_and_the_summary_lists_what_was_not_written(run, monkeypatch, capsys):
    out, args = run
    _fill_disk_at(monkeypatch, "b_overlay.png")
    code = infer.main(args)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == [
        f"{PREFIX}{out / 'b_overlay.png'}: {FULL}; the run stopped there: 3 of 4 inputs not written "
        f"(status 'not written' in {out / 'summary.csv'})"]
    rows = {r["case"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert {c: r["status"] for c, r in rows.items()} == {"a": "ok", "b": "not written", "c": "not written", "d": "not written"}
    assert rows["b"]["message"] == f"{out / 'b_overlay.png'}: not written: {FULL}"
    assert rows["b"]["mask"] == "b_mask.png"  # written before the disk filled up, and kept
    assert rows["c"]["message"] == f"{Path(args[1]) / 'c.png'}: not segmented: the run stopped at {out / 'b_overlay.png'} ({FULL})"
    for name in ("a_mask.png", "a_overlay.png", "b_mask.png"):
        with Image.open(out / name) as image:
            image.load()  # intact
    assert not (out / "b_overlay.png").exists() and not (out / "c_mask.png").exists()
    assert _no_temporary_files(out)
    assert "segmented 1 of 4 inputs (0 failed, 0 skipped, 3 not written)" in captured.out


def test_disk_full_for_the_summary_names_it_and_keeps_the_masks(run, monkeypatch, capsys):
    out, args = run

    def full(path, text):
        raise OSError(errno.ENOSPC, FULL)

    monkeypatch.setattr(summary, "write_text", full)
    code = infer.main(args)
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"{PREFIX}{out / 'summary.csv'}: {FULL}; the summary was not written, but the masks of 4 of 4 inputs "
        f"were: {out / '.medseg-masksup-manifest.jsonl'} lists every file written"]
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["a_mask.png", "b_mask.png", "c_mask.png", "d_mask.png"]
    assert _no_temporary_files(out)


def test_a_vanished_output_folder_is_one_line_and_not_made_again(run, monkeypatch, capsys):
    out, args = run
    _fill_disk_at(monkeypatch, "c_overlay.png", action=lambda path: shutil.rmtree(out))
    code = infer.main(args)
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines() == [
        f"{PREFIX}output folder {out} vanished during the run (deleted, moved or unmounted) after 2 of 4 inputs "
        "were written; the summary was not written"]
    assert not out.exists()  # not made again half-empty
