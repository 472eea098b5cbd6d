"""Bundle runs end on a user error with one line and the documented exit status, not a chained traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, TRAIN_CONFIG
from medseg_masksup.bundle_exit import exit_status, user_error_in
from medseg_masksup.data.datalist import DatalistError
from medseg_masksup.errors import InputError, NothingProcessedError

BUNDLES = REPO / "bundles" / "masksup"
ENV = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def _bundle(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", config, *args],
                          cwd=REPO, capture_output=True, text=True, env=ENV, timeout=300)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.integration
def test_inference_bundle_missing_input_is_one_line_with_status_2(tmp_path):
    proc = _bundle(str(BUNDLES / "inference.json"), "--input", str(tmp_path / "nowhere"), "--ckpt", str(tmp_path / "m.pt"),
                   "--output_dir", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _error_lines(proc.stderr)[-1] == f"error: input not found: {tmp_path / 'nowhere'}"


@pytest.mark.integration
def test_training_bundle_empty_datalist_is_one_line_with_status_2(tmp_path):
    datalist = tmp_path / "datalist.json"
    datalist.write_text('{"training": []}')
    proc = _bundle(str(TRAIN_CONFIG), "--datalist", str(datalist), "--output_dir", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert _error_lines(proc.stderr)[-1] == f"error: datalist {datalist} has no 'training' items"


def test_user_error_is_found_in_monai_s_wrapping_and_mapped_to_its_status():
    try:
        try:
            raise DatalistError("datalist x.json: bad")
        except DatalistError as err:
            raise RuntimeError("Failed to evaluate ConfigExpression") from err
    except RuntimeError as wrapped:
        assert str(user_error_in(wrapped)) == "datalist x.json: bad"
    assert user_error_in(RuntimeError("a bug")) is None
    assert exit_status(InputError("x")) == 2
    assert exit_status(NothingProcessedError("x")) == 1
