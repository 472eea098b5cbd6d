"""Shared test settings: CPU only, few threads (CI has 2 cores), paths to the optional real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TRAIN_CONFIG = REPO / "bundles" / "masksup" / "train.json"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the checkout; tests using it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA
