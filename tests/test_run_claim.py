"""Run folders claimed by the live process that trains into them: a dead claim is told from a live one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from medseg_masksup.training import run_claim
from medseg_masksup.training.checkpoints import find_resume_dir
from medseg_masksup.training.run_claim import (LOCK_NAME, RunFolderInUse, abandoned, claim, in_use, release,
                                               remove_abandoned_empty_folders, remove_if_empty)

HOLD = ("import sys; from medseg_masksup.training.run_claim import claim; claim(sys.argv[1]); "
        "print('held', flush=True); sys.stdin.read()")


def _holder(folder: Path) -> subprocess.Popen:
    """Another process that claims ``folder`` and holds it until its stdin closes (or it is killed)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _killed_holder(folder: Path) -> None:
    proc = _holder(folder)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


@pytest.mark.integration
def test_a_live_claim_is_in_use_and_refused_to_a_second_process_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    proc = _holder(folder)
    try:
        assert in_use(folder) and not abandoned(folder)
        with pytest.raises(RunFolderInUse) as err:
            claim(folder)
        assert str(err.value) == (f"{folder} is being trained into by process {proc.pid} on {os.uname().nodename}; "
                                  "wait for it to end (or stop it), or start a new run")
        assert not remove_if_empty(folder) and folder.is_dir()
    finally:
        proc.kill()
        proc.wait(timeout=60)


@pytest.mark.integration
def test_a_killed_holder_leaves_an_abandoned_claim_that_a_sweep_removes_only_if_empty(tmp_path):
    empty, used = tmp_path / "a", tmp_path / "b"
    _killed_holder(empty)
    _killed_holder(used)
    (used / "last.pt").write_bytes(b"x")
    assert abandoned(empty) and abandoned(used) and not in_use(empty)
    assert remove_abandoned_empty_folders(tmp_path) == [empty]
    assert not empty.exists() and (used / "last.pt").is_file() and (used / LOCK_NAME).is_file()
    claim(used)  # a dead claim can be taken over (e.g. by --resume)
    try:
        assert not abandoned(used) and in_use(used)
    finally:
        assert release(used) is False  # it holds a checkpoint: kept
    assert not (used / LOCK_NAME).exists() and (used / "last.pt").is_file()


def test_a_claim_being_made_is_not_taken_for_a_dead_one(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).touch()  # created, not yet locked and signed: the instant inside claim()
    assert not abandoned(folder) and not remove_if_empty(folder) and folder.is_dir()


def test_release_removes_the_lock_and_an_empty_folder_and_is_idempotent(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    assert claim(folder) == os.fspath(folder) and claim(folder) == os.fspath(folder)  # twice: still one claim
    assert (folder / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    assert release(folder) is True and not folder.exists()
    assert release(folder) is False
    assert str(folder.resolve()) not in run_claim._claims


@pytest.mark.integration
def test_resume_auto_skips_a_run_another_process_trains_and_explicit_resume_of_it_is_refused(tmp_path):
    base = tmp_path / "out" / "data" / "masksup"
    older, newer = base / "20240101-000000", base / "20240102-000000"
    for folder in (older, newer):
        folder.mkdir(parents=True)
        (folder / "last.pt").write_bytes(b"x")
    proc = _holder(newer)
    try:
        assert find_resume_dir("auto", str(tmp_path / "out"), "data", "masksup") == os.fspath(older)
        with pytest.raises(RunFolderInUse, match=f"{newer} is being trained into by process {proc.pid}"):
            claim(find_resume_dir(str(newer), str(tmp_path / "out"), "data", "masksup"))
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    deadline = time.time() + 30
    while in_use(newer) and time.time() < deadline:
        time.sleep(0.05)
    assert find_resume_dir("auto", str(tmp_path / "out"), "data", "masksup") == os.fspath(newer)
