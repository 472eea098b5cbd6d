import subprocess
import sys

import pytest

from medseg_masksup.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name}" in out


def test_unknown_command_is_an_error(capsys):
    assert main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_train_help_names_the_bundle_command(capsys):
    assert main(["train", "--help"]) == 0
    assert "python -m monai.bundle run training --config_file bundles/masksup/train.json" in capsys.readouterr().out


@pytest.mark.integration
def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "medseg_masksup.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage: medseg-masksup" in proc.stdout
