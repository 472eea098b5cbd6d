import mlflow
import pytest
from ignite.engine import Engine

from medseg_masksup.training.tracking import MLflowRunHandler, sqlite_uri


def _engine():
    return Engine(lambda engine, batch: None)


def test_a_new_run_is_created_never_an_unfinished_one_adopted(tmp_path):
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    crashed = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup")
    crashed.start(_engine())  # left RUNNING, as after a SIGKILL
    fresh = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup")
    fresh.start(_engine())
    assert fresh.run_id != crashed.run_id


def test_resume_with_changed_params_tags_them_instead_of_failing(tmp_path):
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    first = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup",
                             experiment_param={"epochs": "1", "lr": "0.0001"})
    first.start(_engine())
    resumed = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup", run_id=first.run_id,
                               experiment_param={"epochs": "2", "lr": "0.0001", "new": "x"})
    resumed.start(_engine())  # MLflow refuses to change a param: this used to raise
    run = mlflow.MlflowClient(uri).get_run(first.run_id)
    params = run.data.params  # (MONAI also logs the engine's max_epochs / epoch_length)
    assert {k: params[k] for k in ("epochs", "lr", "new")} == {"epochs": "1", "lr": "0.0001", "new": "x"}
    assert run.data.tags["resumed.epochs"] == "1 -> 2"


def test_a_run_name_is_required(tmp_path):
    with pytest.raises(ValueError, match="needs a run_name"):
        MLflowRunHandler(tracking_uri=sqlite_uri(str(tmp_path / "m.db")), experiment_name="e")
