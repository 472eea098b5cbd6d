"""Shared test settings: CPU only, few threads (CI has 2 cores), paths to the optional real data, and the tiers.

Tiers: ``pytest`` runs the default suite (what CI runs; two pytest-xdist workers, ``-n 0`` for one process); ``pytest -m "not integration"`` is the fast tier for
editing (no test that trains, runs a study or starts the CLI or a bundle in a subprocess). The opt-in markers
(``slow``, ``gpu``, ``browser``) run only when ``-m`` names them (``pytest -m slow``), whatever else it selects.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TRAIN_CONFIG = REPO / "bundles" / "masksup" / "train.json"

#: pytest-xdist workers share the cores: each gets its share of them (CI: 2 cores, 2 workers, 1 thread each)
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, os.cpu_count() or 1) // WORKERS)
torch.set_num_threads(THREADS)
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))  # the CLI and bundle processes tests start

#: markers whose tests run only when ``-m`` names them
OPT_IN_MARKERS = ("slow", "gpu", "browser")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the opt-in tests whose marker the ``-m`` expression does not name (so ``-m "not integration"``
    keeps them out as the default run does)."""
    expression = config.getoption("markexpr") or ""
    named = {m for m in OPT_IN_MARKERS if re.search(rf"\b{m}\b", expression)}
    dropped = [item for item in items if any(item.get_closest_marker(m) for m in OPT_IN_MARKERS if m not in named)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` next to the checkout; tests using it skip cleanly where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_study_session(tmp_path_factory) -> tuple[Path, list[str]]:
    """The tiny ``compare`` study (2 arms, 1 epoch), trained and evaluated once per session, and its arguments.
    Tests must not change it: take a copy with ``study_fixtures.copy_study``."""
    from study_fixtures import tiny_study_args

    from medseg_masksup.commands.compare import main as compare

    root = tmp_path_factory.mktemp("tiny-study")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        args = tiny_study_args(root / "data", root / "study")
        assert compare(args) == 0
    return root / "study", args


@pytest.fixture
def tiny_study(tiny_study_session, tmp_path) -> tuple[Path, list[str]]:
    """A copy of the session's tiny study for this test, and its ``compare`` arguments."""
    from study_fixtures import copy_study

    return copy_study(*tiny_study_session, tmp_path / "study")
