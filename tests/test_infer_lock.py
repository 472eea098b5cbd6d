"""Issue 20 item 4: an output folder is locked for the length of an ``infer`` run. A second run into it is
refused in one line naming the holder (pid, host, start time); the lock of a run that died is taken over with
a one-line note. ``compare`` locks its study folder with the same code."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from infer_fixtures import picture, random_checkpoint
from PIL import Image

from medseg_masksup.commands import infer

REPO = Path(__file__).resolve().parents[1]
PREFIX = "medseg-masksup infer: error: "
STARTED = r"started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d"

#: an ``infer`` run that stops in its first case until the file ``go`` exists (it touches ``ready`` there)
BLOCKED_INFER = r"""
import sys, time, pathlib
from medseg_masksup.commands import infer
from medseg_masksup.inference.predictor import Predictor
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
segment = Predictor.segment
def blocked(self, *args, **kwargs):
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
    return segment(self, *args, **kwargs)
Predictor.segment = blocked
sys.exit(infer.main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", seed=7)


def _args(tmp_path: Path, ckpt: Path) -> list[str]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    Image.fromarray(picture(24, 40, (slice(4, 14), slice(20, 34)))).save(src / "a.png")
    return ["--input", str(src), "--output_dir", str(tmp_path / "out"), "--ckpt", str(ckpt), "--no_progress"]


def _blocked_run(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start an infer run in another process; return once it holds the output folder (is in its first case)."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", BLOCKED_INFER, str(ready), str(go), *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the first run did not start: {proc.communicate()}")
        time.sleep(0.1)
    return proc, go


@pytest.mark.integration
def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_holder(tmp_path, ckpt, capsys):
    """Two ``infer --overwrite`` runs into one folder at once both succeeded, leaving a mix of both runs' masks."""
    args = _args(tmp_path, ckpt)
    first, go = _blocked_run(tmp_path, [*args, "--threshold", "0.3"])
    try:
        code = infer.main([*args, "--overwrite"])
        err = capsys.readouterr().err.strip()
    finally:
        go.touch()
        out, first_err = first.communicate(timeout=180)
    assert code == 2
    assert re.fullmatch(
        re.escape(f"{PREFIX}output folder {tmp_path / 'out'} is in use by another infer run (pid {first.pid} on "
                  f"{socket.gethostname()}, ") + STARTED + re.escape("); wait for it to finish or choose another --output_dir"),
        err), err
    assert first.returncode == 0, first_err
    assert "threshold" in (tmp_path / "out" / "summary.json").read_text()  # the first run's summary, complete
    assert '"threshold": 0.3' in (tmp_path / "out" / "summary.json").read_text()


@pytest.mark.integration
def test_the_lock_of_a_killed_run_is_taken_over_with_a_note(tmp_path, ckpt, capsys):
    args = _args(tmp_path, ckpt)
    first, _ = _blocked_run(tmp_path, args)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert infer.main([*args, "--overwrite"]) == 0
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(
        re.escape(f"note: output folder {tmp_path / 'out'}: taking over the lock of an infer run that is no longer "
                  f"running (pid {first.pid} on {socket.gethostname()}, ") + STARTED + r"\)", err), err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".medseg-masksup-manifest.jsonl", "a_mask.png", "a_overlay.png", "summary.csv", "summary.json"]  # lock released


def test_a_study_in_use_names_the_compare_that_holds_it(tmp_path, capsys):
    """``compare`` uses the same lock: its refusal names the holder too."""
    from medseg_masksup.io.folder_lock import hold_lock
    from medseg_masksup.study.runner import LOCK_FILE
    from medseg_masksup.commands.compare import main as compare

    (tmp_path / "d.json").write_text("{}")
    study = tmp_path / "study"
    study.mkdir()
    with hold_lock(study / LOCK_FILE, "'compare'", busy=lambda holder: holder):
        assert compare(["--datalist", str(tmp_path / "d.json"), "--output_dir", str(study), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"is in use by another 'compare' (it holds {study / LOCK_FILE}: pid {os.getpid()} on {socket.gethostname()}, started " in err
    assert not (study / "study.json").exists() and not (study / LOCK_FILE).exists()
