"""The real datasets in ../shared/data (skipped where absent).

Default suite: GlaS (85 pairs), Kvasir-SEG (700 + 101 pairs) and PH2 (20 pairs) are
all accepted in ``--strict`` mode.  Slow (opt-in, ``-m slow``): the training bundle
trains one epoch from each datalist.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

try:
    from prepare_fixtures import SHARED_DATA
except ImportError:  # tests/ is a package
    from tests.prepare_fixtures import SHARED_DATA

from data_scripts.cli import main

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "masksup" / "train.json"

# dataset name, folder under shared/data, expected (training, validation, test)
REAL = {
    "glas": ("glas", (85, 0, 0)),
    "kvasir": ("kvasir-seg", (700, 101, 0)),
    "ph2": ("ph2", (20, 0, 0)),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Prepare a real dataset once per module; returns (datalist path, seconds taken)."""
    cache: dict[str, tuple[Path, float]] = {}

    def get(name: str) -> tuple[Path, float]:
        folder = SHARED_DATA / REAL[name][0]
        if not folder.is_dir():
            pytest.skip(f"real data not available: {folder} does not exist")
        if name not in cache:
            out = tmp_path_factory.mktemp(f"real_{name}")
            t0 = time.perf_counter()
            rc = main([name, "--src", str(folder), "--out", str(out), "--strict", "--quiet"])
            elapsed = time.perf_counter() - t0
            assert rc == 0, f"{name}: preparation failed (exit {rc})"
            cache[name] = (out / "datalist.json", elapsed)
        return cache[name]

    return get


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_dataset_fully_accepted(name, prepared, capsys):
    datalist_file, elapsed = prepared(name)
    datalist = json.loads(datalist_file.read_text())
    counts = tuple(len(datalist[s]) for s in ("training", "validation", "test"))
    assert counts == REAL[name][1]
    summary = json.loads((datalist_file.parent / "dataset.json").read_text())
    assert summary["problems"]["count"] == 0
    assert summary["counts"]["total"] == sum(REAL[name][1])
    # spot-check a few masks against their images
    out = datalist_file.parent
    for item in datalist["training"][:3] + datalist["validation"][:2]:
        with Image.open(item["image"]) as im, Image.open(out / item["label"]) as mask:
            assert im.size == mask.size and mask.mode == "L"
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values <= {0, 255} and 255 in values
    with capsys.disabled():
        print(f"\n[real data] {name}: {sum(counts)} pairs accepted {counts} in {elapsed:.1f}s")


@pytest.mark.integration
def test_real_glas_rerun_is_idempotent(prepared, tmp_path):
    datalist_file, _ = prepared("glas")
    out = datalist_file.parent
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    rc = main(["glas", "--src", str(SHARED_DATA / "glas"), "--out", str(out), "--strict", "--quiet"])
    assert rc == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL))
def test_bundle_trains_one_epoch(name, prepared, tmp_path):
    if not BUNDLE.is_file():
        pytest.skip(f"training bundle not available yet: {BUNDLE}")
    datalist_file, _ = prepared(name)
    cmd = [
        sys.executable, "-m", "monai.bundle", "run", "training",
        "--config_file", str(BUNDLE),
        "--datalist", str(datalist_file),
        "--output_dir", str(tmp_path / "run"),
        "--epochs", "1",
        "--img_size", "[64,64]",
        "--batch_size", "4",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"bundle training failed on {name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert list((tmp_path / "run" / name).rglob("model.pt")), f"no checkpoint written under {tmp_path / 'run' / name}"
