"""A ``runs/`` folder (``mlflow.db`` + its artifact folder) that can be moved or copied.

MLflow stores absolute artifact locations, so a copied store keeps writing into (and showing) the
original folder. Experiments this package creates keep their artifacts in ``<store folder>/mlruns``
and carry the tag :data:`ARTIFACTS_TAG` saying so; :func:`rebase_artifacts` (called each time we
open a store for logging) points every such experiment, its runs, logged models and registered
model versions at the folder the store is in *now*. Experiments created with an explicit
``--artifact_location`` are left alone.
"""

from __future__ import annotations

from .store import sqlite_path

ARTIFACTS_TAG = "medseg_masksup.artifacts"
RELATIVE = "store-relative:mlruns"
ARTIFACT_DIR = "mlruns"

# tables whose rows carry an experiment_id and an artifact location
_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("logged_models", "artifact_location"))


def default_artifact_location(tracking_uri: str, artifact_location: str | None = None) -> str | None:
    """``artifact_location`` if given, else ``<store folder>/mlruns`` (a ``file://`` URI) for a SQLite store."""
    if artifact_location:
        return artifact_location
    db = sqlite_path(tracking_uri)
    return (db.parent.resolve() / ARTIFACT_DIR).as_uri() if db is not None else None


def experiment_tags(tracking_uri: str, artifact_location: str | None) -> dict[str, str]:
    """Tags for a new experiment: the model-training view of the MLflow UI, and store-relative
    artifacts unless an explicit location was asked for."""
    tags = {"mlflow.experimentKind": "custom_model_development"}
    if not artifact_location and sqlite_path(tracking_uri) is not None:
        tags[ARTIFACTS_TAG] = RELATIVE
    return tags


def create_experiment(client, name: str, artifact_location: str | None = None) -> str:
    """Create experiment ``name`` (training view; artifacts store-relative unless ``artifact_location``)."""
    uri = client.tracking_uri
    return client.create_experiment(name, artifact_location=default_artifact_location(uri, artifact_location),
                                    tags=experiment_tags(uri, artifact_location))


def rebase_artifacts(tracking_uri: str) -> int:
    """Point the store-relative experiments of the SQLite store at ``<its folder>/mlruns``;
    returns how many experiments were moved (0 when the store is where it was written)."""
    import sqlite3

    db = sqlite_path(tracking_uri)
    if db is None or not db.is_file():
        return 0
    new_root = (db.parent.resolve() / ARTIFACT_DIR).as_uri()
    con = sqlite3.connect(str(db), timeout=30)
    moved = 0
    try:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "experiment_tags" not in tables:
            return 0
        rows = con.execute(
            "SELECT e.experiment_id, e.artifact_location FROM experiments e JOIN experiment_tags t "
            "ON t.experiment_id = e.experiment_id WHERE t.key = ? AND t.value = ?", (ARTIFACTS_TAG, RELATIVE)).fetchall()
        with con:
            for experiment_id, old_root in rows:
                if not old_root or old_root == new_root:
                    continue
                moved += 1
                for table, column in _COLUMNS:
                    if table in tables:
                        con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608 - fixed names
                                    f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                                    (new_root, len(old_root) + 1, experiment_id, len(old_root), old_root))
                if "model_versions" in tables:
                    for column in ("storage_location", "source"):
                        con.execute(f"UPDATE model_versions SET {column} = ? || substr({column}, ?) "  # noqa: S608
                                    f"WHERE substr({column}, 1, ?) = ?",
                                    (new_root, len(old_root) + 1, len(old_root), old_root))
    finally:
        con.close()
    if moved:
        _forget_cached_artifact_repos()
    return moved


def _forget_cached_artifact_repos() -> None:
    """MLflow caches each run's artifact repository per process (by run id): drop the stale ones."""
    from mlflow.tracking._tracking_service import utils

    cache = getattr(utils, "_artifact_repos_cache", None)
    if cache is not None:
        cache.clear()
