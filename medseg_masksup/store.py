"""MLflow's SQLite store, created and upgraded by one process at a time.

MLflow creates (and migrates) a ``sqlite:///`` store the first time a client opens it, and the
experiment the first time a run asks for it. Several trainings started together into a fresh
``--output_dir`` race on both (``alembic … Online migration expected to match one row``,
``table _alembic_tmp_experiments already exists``, a second experiment of the same name).
:func:`store_lock` serialises these steps with a file lock beside the database file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

#: seconds to wait for another process to finish creating the store before giving up
LOCK_TIMEOUT_S = 600.0


def sqlite_path(tracking_uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other stores or an in-memory database)."""
    if not tracking_uri or not str(tracking_uri).startswith("sqlite:///"):
        return None
    path = str(tracking_uri)[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


@contextlib.contextmanager
def store_lock(tracking_uri: str | None, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<database>.lock`` while the body runs (a no-op for stores that are not SQLite files).

    The database's folder is created first, so the lock (and then the store) can be made in it.
    """
    path = sqlite_path(tracking_uri)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(os.fspath(path) + ".lock", timeout=timeout):
        yield


def open_client(tracking_uri: str):
    """An ``MlflowClient`` whose store has been created / upgraded under :func:`store_lock`."""
    import mlflow

    with store_lock(tracking_uri):
        return mlflow.MlflowClient(tracking_uri=tracking_uri)
