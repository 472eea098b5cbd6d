"""A runs/ folder (mlflow.db + mlruns/) keeps working when moved or copied."""

import shutil

import pytest
import mlflow

from medseg_masksup.tracking.portable_store import create_experiment, rebase_artifacts
from medseg_masksup.tracking.store import sqlite_uri


def _store_with_one_run(folder, explicit_location=None):
    uri = sqlite_uri(str(folder / "mlflow.db"))
    client = mlflow.MlflowClient(uri)
    experiment_id = create_experiment(client, "exp", explicit_location)
    run = client.create_run(experiment_id, run_name="train")
    (folder / "note.txt").write_text("first")
    client.log_artifact(run.info.run_id, str(folder / "note.txt"))
    model = client.create_logged_model(experiment_id, name="m", source_run_id=run.info.run_id)
    return client, experiment_id, run.info.run_id, model.model_id


@pytest.mark.integration
def test_a_copied_store_logs_into_the_copy_and_shows_its_old_artifacts(tmp_path):
    original = tmp_path / "runs"
    original.mkdir()
    _, experiment_id, run_id, model_id = _store_with_one_run(original)
    copy = shutil.copytree(original, tmp_path / "elsewhere" / "runs")
    uri = sqlite_uri(str(copy / "mlflow.db"))
    assert rebase_artifacts(uri) == 1
    assert rebase_artifacts(uri) == 0  # idempotent
    client = mlflow.MlflowClient(uri)
    assert client.get_experiment(experiment_id).artifact_location == (copy / "mlruns").as_uri()
    assert client.get_run(run_id).info.artifact_uri.startswith((copy / "mlruns").as_uri() + "/")
    assert client.get_logged_model(model_id).artifact_location.startswith((copy / "mlruns").as_uri() + "/")
    assert [a.path for a in client.list_artifacts(run_id)] == ["note.txt"]
    (tmp_path / "second.txt").write_text("second")
    client.log_artifact(run_id, str(tmp_path / "second.txt"))
    assert list(copy.glob("mlruns/**/second.txt"))
    assert not list(original.glob("mlruns/**/second.txt"))  # the original folder is left alone


@pytest.mark.integration
def test_a_moved_store_logs_into_its_new_place(tmp_path):
    original = tmp_path / "runs"
    original.mkdir()
    _, experiment_id, run_id, _ = _store_with_one_run(original)
    moved = tmp_path / "moved"
    shutil.move(original, moved)
    uri = sqlite_uri(str(moved / "mlflow.db"))
    rebase_artifacts(uri)
    client = mlflow.MlflowClient(uri)
    run = client.create_run(experiment_id, run_name="evaluate")
    (tmp_path / "eval.txt").write_text("x")
    client.log_artifact(run.info.run_id, str(tmp_path / "eval.txt"))
    assert list(moved.glob("mlruns/**/eval.txt")) and not original.exists()
    assert [a.path for a in client.list_artifacts(run_id)] == ["note.txt"]


@pytest.mark.integration
def test_an_explicit_artifact_location_is_never_rewritten(tmp_path):
    original = tmp_path / "runs"
    original.mkdir()
    explicit = (tmp_path / "shared-artifacts").as_uri()
    _, experiment_id, _, _ = _store_with_one_run(original, explicit)
    copy = shutil.copytree(original, tmp_path / "copy")
    uri = sqlite_uri(str(copy / "mlflow.db"))
    assert rebase_artifacts(uri) == 0
    assert mlflow.MlflowClient(uri).get_experiment(experiment_id).artifact_location == explicit


@pytest.mark.integration
def test_new_experiments_open_in_the_model_training_view(tmp_path):
    client = mlflow.MlflowClient(sqlite_uri(str(tmp_path / "mlflow.db")))
    experiment = client.get_experiment(create_experiment(client, "exp"))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.artifact_location == (tmp_path / "mlruns").as_uri()


def test_the_store_folder_comes_from_the_one_sqlite_uri_parser(tmp_path):
    """store.sqlite_path is the only reader of a sqlite:/// URI: a query string is not part of the file name, and
    an in-memory store has no folder to keep artifacts in."""
    from medseg_masksup.tracking.portable_store import default_artifact_location

    db = tmp_path / "runs" / "mlflow.db"
    assert default_artifact_location(sqlite_uri(str(db)) + "?timeout=30") == (db.parent / "mlruns").as_uri()
    assert default_artifact_location("sqlite:///:memory:") is None
    assert default_artifact_location("http://127.0.0.1:5000") is None
    assert default_artifact_location(sqlite_uri(str(db)), "file:///elsewhere") == "file:///elsewhere"
