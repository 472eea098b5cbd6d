"""From a wheel install, outside the checkout, the README's commands work (opt-in: ``pytest -m slow``; 6 min on 2 busy cores).

The wheel is built offline (``pip wheel --no-deps --no-build-isolation``) from a copy of the sources and installed
with ``--no-deps --no-index`` into a fresh venv in a temporary folder. That venv is made with
``--system-site-packages`` and, since this environment is itself a venv (whose packages the base interpreter
does not see), a ``.pth`` file appends this environment's site-packages after the venv's own: torch, MONAI and
MLflow come from here without network, while ``medseg_masksup`` is the wheel's copy (the editable install's
import hook in this environment is not run through a ``.pth`` path entry).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "medseg_masksup", "data_scripts", "bundles")

pytestmark = pytest.mark.slow


def _readme_commands(section: str) -> list[str]:
    """The ``medseg-masksup`` lines of the README's bash block under ``## {section}``."""
    text = README.read_text().split(f"## {section}", 1)[1]
    block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith("medseg-masksup ")]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(a working folder outside the checkout, the environment whose PATH starts with the wheel venv's bin)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif (REPO / name).is_file():
            shutil.copy2(REPO / name, source / name)
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(root / "dist"), str(source)], capture_output=True, text=True, timeout=600, env=offline)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (root / "dist").glob("medseg_masksup-*.whl")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    venv_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (venv_site / "_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                               capture_output=True, text=True, timeout=600, env=offline)
    assert installed.returncode == 0, installed.stderr[-2000:]

    work = root / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    where = _sh("python -c 'import medseg_masksup; print(medseg_masksup.__file__)'", work, env)
    assert Path(where.stdout.strip()).is_relative_to(venv_site), where.stdout  # the wheel's copy, not the checkout
    return work, env


def _sh(command: str, cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_readme_commands_from_a_wheel_outside_the_checkout(wheel_env):
    from medseg_masksup.data.synthetic import ensure_synthetic_dataset

    work, env = wheel_env
    datalist = ensure_synthetic_dataset(work / "data", n_cases=10, size=64)
    assert not work.is_relative_to(REPO)

    # train with a preset, as the README's real-data command, shortened to a smoke run
    (train,) = [c for c in _readme_commands("Train on your data") if c.startswith("medseg-masksup train --preset")]
    train = train.replace("data/glas/datalist.json", str(datalist))
    _sh(f'{train} --epochs 1 --img_size "[32,32]" --batch_size 2 --output_dir runs_preset', work, env)
    (ckpt,) = work.glob("runs_preset/*/masksup/*/model.pt")

    # infer, evaluate, robustness, export exactly as listed, placeholders filled in
    commands = _readme_commands("Segment new scans, evaluate, export")
    assert [c.split()[1] for c in commands] == ["infer", "evaluate", "robustness", "export"]
    for command in commands:
        command = re.sub(r"runs/synthetic-glands/masksup/<timestamp>/model\.pt|<model\.pt>", str(ckpt), command)
        command = command.replace("data/glas/datalist.json", str(datalist)).replace("scans/", str(datalist.parent / "images"))
        _sh(command, work, env)
    assert list((work / "masks").glob("*_mask.png"))
    assert (work / "eval" / "summary.json").is_file() and (work / "robustness" / "robustness.csv").is_file()
    assert {"model.ts", "model.onnx", "export.json"} <= {p.name for p in (work / "export").iterdir()}
    assert "--arms" in _sh("medseg-masksup compare --help", work, env).stdout

    # the MONAI route with the path the README tells wheel users to use, then the README's MLflow snippet on its run
    bundle = _sh("medseg-masksup bundle-path", work, env).stdout.strip()
    assert "site-packages" in bundle and not Path(bundle).is_relative_to(REPO)
    line = next(ln for ln in README.read_text().splitlines() if "bundle-path train.json)" in ln and "monai.bundle" in ln)
    command = re.search(r"`(python -m monai\.bundle run training [^`]*)`", line).group(1)
    assert shlex.split(command)[-1] == "$(medseg-masksup bundle-path train.json)"
    _sh(f'{command} --epochs 1 --synthetic_cases 10 --synthetic_size 32 --img_size "[32,32]" --batch_size 4', work, env)
    assert len(list(work.glob("runs/synthetic-glands/masksup/*/model.pt"))) == 1
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "pyfunc.load_model" in b]
    snippet = snippet.replace("(2, 3, 128, 128)", "(2, 3, 32, 32)")  # the smoke run's image size
    out = _sh(f"python - <<'EOF'\n{snippet}print(logits.shape)\nEOF", work, env).stdout
    assert out.strip().splitlines()[-1] == "(2, 1, 32, 32)"
