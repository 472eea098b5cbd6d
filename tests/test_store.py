"""MLflow's SQLite store and experiment are created safely when several runs start at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import mlflow
import pytest

from conftest import REPO
from medseg_masksup.tracking.store import ensure_store, sqlite_path, sqlite_uri, store_lock

#: one process: import everything once, then 3 times: wait until all processes are ready, open a fresh store
#: and start a run in it exactly as training does
START_RUNS = """
import sys, time
from pathlib import Path
from ignite.engine import Engine
from medseg_masksup.tracking.run_handler import MLflowRunHandler
from medseg_masksup.tracking.store import sqlite_uri
root, name, n_procs, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
(root / f"ready-{name}").touch()
for r in range(rounds):
    while len(list(root.glob("ready-*"))) < n_procs * (r + 1):  # a barrier: everybody starts round r together
        time.sleep(0.002)
    handler = MLflowRunHandler(tracking_uri=sqlite_uri(str(root / f"round{r}" / "mlflow.db")),
                               experiment_name="masksup-together", run_name=name,
                               experiment_param={"method": name}, close_on_complete=True)
    handler.start(Engine(lambda engine, batch: None))
    handler.close()
    (root / f"ready-{name}-{r + 1}").touch()
"""


@pytest.mark.integration
def test_three_runs_started_at_once_into_a_fresh_folder_three_times(tmp_path):
    n_procs, rounds = 3, 3
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    procs = [subprocess.Popen([sys.executable, "-c", START_RUNS, str(tmp_path), f"run{i}", str(n_procs), str(rounds)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n_procs)]
    try:  # a crashed process leaves the others waiting at the barrier: stop at the first failure
        while any(p.poll() is None for p in procs):
            failed = [p for p in procs if p.poll() not in (None, 0)]
            assert not failed, failed[0].communicate()[1][-2000:]
            time.sleep(0.2)
        for p in procs:
            assert p.returncode == 0, p.communicate()[1][-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r in range(rounds):
        client = mlflow.MlflowClient(sqlite_uri(str(tmp_path / f"round{r}" / "mlflow.db")))
        experiments = [e for e in client.search_experiments() if e.name == "masksup-together"]
        assert len(experiments) == 1
        runs = client.search_runs([experiments[0].experiment_id])
        assert sorted(r.info.run_name for r in runs) == ["run0", "run1", "run2"]
        assert {r.info.status for r in runs} == {"FINISHED"}


def test_sqlite_path_only_for_sqlite_files(tmp_path):
    assert sqlite_path(sqlite_uri(str(tmp_path / "a.db"))) == tmp_path / "a.db"
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("http://localhost:5000") is None
    assert sqlite_path(None) is None


def test_store_lock_creates_the_folder_and_excludes_a_second_holder(tmp_path):
    from filelock import FileLock, Timeout

    uri = sqlite_uri(str(tmp_path / "new" / "mlflow.db"))
    with store_lock(uri):
        assert (tmp_path / "new").is_dir()
        other = FileLock(str(tmp_path / "new" / "mlflow.db.lock"), timeout=0.05)
        try:
            other.acquire()
            acquired = True
            other.release()
        except Timeout:
            acquired = False
    assert not acquired


@pytest.mark.integration
def test_a_store_whose_creation_stopped_half_way_is_not_left_under_its_name(tmp_path, monkeypatch):
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))

    def killed_half_way(tracking_uri):  # what a process killed during MLflow's migrations leaves behind
        sqlite_path(tracking_uri).write_bytes(b"half a database")
        raise KeyboardInterrupt

    monkeypatch.setattr(mlflow, "MlflowClient", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        ensure_store(uri)
    assert not (tmp_path / "mlflow.db").exists()  # later runs do not find a broken store
    monkeypatch.undo()
    ensure_store(uri)  # the leftover of the stopped creation is replaced
    client = mlflow.MlflowClient(uri)
    client.create_experiment("after")
    assert "after" in [e.name for e in client.search_experiments()]
