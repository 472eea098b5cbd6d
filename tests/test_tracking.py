import mlflow
import pytest
from ignite.engine import Engine

from medseg_masksup.tracking.run_handler import MLflowRunHandler
from medseg_masksup.tracking.store import sqlite_uri


def _engine():
    return Engine(lambda engine, batch: None)


@pytest.mark.integration
def test_a_new_run_is_created_never_an_unfinished_one_adopted(tmp_path):
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    crashed = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup")
    crashed.start(_engine())  # left RUNNING, as after a SIGKILL
    fresh = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="masksup")
    fresh.start(_engine())
    assert fresh.run_id != crashed.run_id


@pytest.mark.integration
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


@pytest.mark.integration
def test_close_abandoned_runs_closes_only_the_runs_whose_folder_the_caller_judges_dead(tmp_path):
    """The handler knows no run folders: the caller (training's run claims) says which are dead."""
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    runs = {}
    for name in ("dead", "alive", "untagged"):
        handler = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name=name)
        if name != "untagged":
            handler.trains_in(str(tmp_path / name))
        handler.start(_engine())  # all three left RUNNING
        runs[name] = handler.run_id
    judged = []

    def abandoned(folder: str) -> bool:
        judged.append(folder)
        return folder.endswith("dead")

    closer = MLflowRunHandler(tracking_uri=uri, experiment_name="e", run_name="next")
    closed = closer.close_abandoned_runs(abandoned)
    assert [(r.run_id, r.run_name, r.run_dir) for r in closed] == [(runs["dead"], "dead", str(tmp_path / "dead"))]
    assert sorted(judged) == [str(tmp_path / "alive"), str(tmp_path / "dead")]  # the untagged run is never judged
    client = mlflow.MlflowClient(uri)
    assert {n: client.get_run(i).info.status for n, i in runs.items()} == {
        "dead": "KILLED", "alive": "RUNNING", "untagged": "RUNNING"}


def test_a_handler_sharing_a_run_logs_into_its_store_and_experiment(tmp_path):
    """The validator's handler names only the trainer's: same store, same experiment, same run."""
    uri = sqlite_uri(str(tmp_path / "mlflow.db"))
    trainer = MLflowRunHandler(tracking_uri=uri, experiment_name="masksup-glands", run_name="masksup")
    trainer.start(_engine())
    validator = MLflowRunHandler(share_with=trainer)
    assert validator.given_tracking_uri == uri and validator.experiment_name == "masksup-glands"
    validator.start(_engine())
    assert validator.run_id == trainer.run_id
    names = [e.name for e in mlflow.MlflowClient(uri).search_experiments()]
    assert "masksup-glands" in names and "monai_experiment" not in names  # MONAI's default experiment never made
