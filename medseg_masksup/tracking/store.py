"""MLflow's SQLite store: its URI, and the store created and upgraded by one process at a time.

:func:`sqlite_uri` writes a store's ``sqlite:///`` URI and :func:`sqlite_path` reads its database file back;
nothing else in the package spells that form. MLflow creates (and migrates) a ``sqlite:///`` store the first
time a client opens it, and the experiment the first time a run asks for it. Several trainings started
together into a fresh ``--output_dir`` race on both (``alembic … Online migration expected to match one row``,
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


def sqlite_uri(path: str) -> str:
    """``sqlite:///<absolute path>``: MLflow 3's local store (plain file stores are refused since 3.13)."""
    return "sqlite:///" + os.path.abspath(path)


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


def ensure_store(tracking_uri: str | None) -> None:
    """Create a missing SQLite store completely or not at all: built under a temporary name, then renamed.

    A process killed while MLflow migrates a fresh database would otherwise leave a half-migrated file
    that every later run fails to open (``duplicate column name: …``). Call under :func:`store_lock`.
    """
    path = sqlite_path(tracking_uri)
    if path is None or path.exists():
        return
    import mlflow

    building = path.with_name(f".{path.name}.creating")
    for leftover in [building, *(building.with_name(building.name + end) for end in ("-journal", "-wal", "-shm"))]:
        leftover.unlink(missing_ok=True)  # from a creation that was killed
    client = mlflow.MlflowClient(tracking_uri=sqlite_uri(os.fspath(building)))
    store = client._tracking_client.store  # MLflow offers no public close; MONAI's handler does the same
    for engine in {getattr(store, "engine", None), getattr(store, "read_engine", None)} - {None}:
        engine.dispose()
    os.replace(building, path)
