"""A file that is not a checkpoint is named as such: random bytes are not "pickled Python objects"."""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO
from medseg_masksup.checkpoint import CheckpointError, load_checkpoint


def _random_file(path, size: int = 1 << 20, seed: int = 0):
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert data[:1] != b"\x80" and data[:2] != b"PK"  # this seed's bytes start like neither format
    path.write_bytes(data)
    return path, data[:8]


def test_a_random_megabyte_is_not_a_checkpoint_at_all(tmp_path):
    path, head = _random_file(tmp_path / "random.pt")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value) == (f"{path}: not a readable PyTorch checkpoint (not a checkpoint at all: neither a zip archive "
                              f"(what torch.save writes) nor a pickle file; it begins with the bytes {head.hex(' ')})")
    assert "pickled Python objects" not in str(err.value) and "could run code" not in str(err.value)


def test_a_text_file_is_not_a_checkpoint_at_all(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("hello world\n" * 100)
    with pytest.raises(CheckpointError, match=r"not a checkpoint at all: .* begins with the bytes 68 65 6c 6c 6f"):
        load_checkpoint(path)


def test_a_zip_archive_not_written_by_torch_is_named_as_such(tmp_path):
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not weights")
    with pytest.raises(CheckpointError, match=r"archive.pt: not a readable PyTorch checkpoint \(a zip archive, but not "
                                              r"one torch.save wrote: file in archive is not in a subdirectory"):
        load_checkpoint(path)


def test_a_plain_pickle_is_not_weights_and_not_called_code(tmp_path):
    path = tmp_path / "list.pt"
    path.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(f"{path}: not a readable PyTorch checkpoint (its pickled data is not a saved set of weights")
    assert "could run code" not in str(err.value)


def test_pickled_objects_still_get_the_could_run_code_refusal(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"model": argparse.Namespace(weights=1)}, path)  # any class: unpickling it would import and call code
    with pytest.raises(CheckpointError, match=r"it holds pickled Python objects, .* could run code"):
        load_checkpoint(path)


@pytest.mark.integration
def test_infer_with_a_random_file_as_ckpt_says_it_is_not_a_checkpoint(tmp_path):
    ckpt, head = _random_file(tmp_path / "weights.pt")
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images / "case.png")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run([sys.executable, "-m", "medseg_masksup.cli", "infer", "--input", str(images), "--ckpt", str(ckpt),
                           "--output_dir", str(tmp_path / "masks"), "--no_progress"],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"medseg-masksup infer: error: {ckpt}: not a readable PyTorch checkpoint (not a checkpoint at all: neither a zip "
        f"archive (what torch.save writes) nor a pickle file; it begins with the bytes {head.hex(' ')})"]
