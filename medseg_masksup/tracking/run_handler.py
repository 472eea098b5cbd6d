"""MLflow tracking of a run: MONAI's MLFlowHandler, made to never adopt a stale run."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from mlflow.exceptions import MlflowException
from monai.handlers import MLFlowHandler

from .store import ensure_store, store_lock


#: tags naming where a run trains, so a later start can tell that its training died
#: (:mod:`medseg_masksup.training.run_claim`)
RUN_DIR_TAG, HOST_TAG = "medseg_masksup.run_dir", "medseg_masksup.host"


def training_view_url(experiment_id: str, server: str = "http://127.0.0.1:5000") -> str:
    """The experiment's runs in the MLflow UI's model-training view. MLflow 3.17's UI picks the view from
    the ``workflowType`` URL parameter or the browser's last choice (GenAI by default), not from the
    experiment's ``mlflow.experimentKind`` tag, so links we print carry the parameter."""
    return f"{server}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


class AbandonedRun(NamedTuple):
    """An MLflow run closed as KILLED because its training died: its id, name and run folder."""

    run_id: str
    run_name: str
    run_dir: str


class MLflowRunHandler(MLFlowHandler):
    """MLFlowHandler that opens a *new* run (or resumes ``run_id``) instead of adopting any unfinished run.

    MONAI's handler re-uses the oldest unfinished run of the same name, a crashed one included. Here:
    ``tags`` (e.g. a study's ``study``/``arm``/``seed``/``fold``) are set on the run it creates;
    ``datalists`` (``{"training": items, "validation": items}``) are logged as the run's MLflow datasets;
    ``run_id`` resumes that run; ``share_with`` logs into another handler's run (e.g. the validator's
    metrics into the trainer's run), in its store and experiment unless others are given; otherwise a fresh run named ``run_name`` is created. A resumed
    run never logs a metric step twice. :meth:`fail` ends the run FAILED or KILLED (training's
    :func:`~medseg_masksup.training.run.run_training` calls it when training raises or is interrupted).
    """

    def __init__(self, tracking_uri: str | None = None, *args, run_id: str | None = None,
                 share_with: MLflowRunHandler | None = None, tags: dict[str, str] | None = None,
                 datalists: Mapping[str, Sequence[Mapping]] | None = None, dataset_name: str = "dataset",
                 datalist_source: str = "", **kwargs) -> None:
        if kwargs.get("run_name") is None and share_with is None and run_id is None:
            raise ValueError("MLflowRunHandler needs a run_name (or run_id / share_with)")
        if share_with is not None:
            tracking_uri = share_with.given_tracking_uri if tracking_uri is None else tracking_uri
            kwargs.setdefault("experiment_name", share_with.experiment_name)
        #: the store as given (``MLFLOW_TRACKING_URI``, when set, wins over it, as in MONAI's handler)
        self.given_tracking_uri = tracking_uri
        self.explicit_artifact_location = kwargs.get("artifact_location")
        self.datalists, self.dataset_name, self.datalist_source = datalists, dataset_name, datalist_source
        if datalists is not None:
            kwargs["dataset_logger"] = self._log_datalists
        uri = os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri
        with store_lock(uri):  # one process creates the store (completely or not at all), the others open it
            ensure_store(uri)
            super().__init__(tracking_uri, *args, **kwargs)
        self.run_id = run_id
        self.share_with = share_with
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}

    def _set_experiment(self) -> None:
        """MONAI's, except that a new experiment opens in the UI's model-training view and keeps its
        artifacts relative to the store (:mod:`.portable_store`)."""
        from .portable_store import create_experiment, rebase_artifacts

        with store_lock(self.client.tracking_uri):  # one process creates the experiment, the others find it
            if self.experiment is None:
                rebase_artifacts(self.client.tracking_uri)
                if self.client.get_experiment_by_name(self.experiment_name) is None:
                    try:
                        create_experiment(self.client, self.experiment_name, self.explicit_artifact_location)
                    except MlflowException as err:  # created meanwhile by a process without the lock
                        if "RESOURCE_ALREADY_EXISTS" not in str(err):
                            raise
            super()._set_experiment()

    def start(self, engine) -> None:
        if self.cur_run is None:
            self._set_experiment()
            if self.share_with is not None:
                if self.share_with.cur_run is None:
                    raise RuntimeError("the MLflow handler to share a run with has not started its run yet")
                self.cur_run = self.share_with.cur_run
            elif self.run_id:
                self.cur_run = self.client.get_run(self.run_id)
                self.client.update_run(self.run_id, status="RUNNING")
                for key, value in self.tags.items():  # e.g. where it trains now
                    self.client.set_tag(self.run_id, key, value)
                self._logged_steps = self._last_steps()
                self._keep_new_params()
            else:
                self.cur_run = self.client.create_run(self.experiment.experiment_id, run_name=self.run_name, tags=self.tags)
            self.run_id = self.cur_run.info.run_id
        super().start(engine)

    def _log_datalists(self, _dataset_dict) -> None:
        """MONAI's dataset hook: the ``datalists`` splits as MLflow datasets (:mod:`.datasets`)."""
        from .datasets import log_datalists

        log_datalists(self.client, self.run_id, self.datalists, self.dataset_name, self.datalist_source)

    def _keep_new_params(self) -> None:
        """MLflow params are write-once: on resume, log only new ones; a changed one (e.g. a larger
        ``epochs``) is recorded as the tag ``resumed.<name>`` = ``"<old> -> <new>"``."""
        if not self.experiment_param:
            return
        logged = self.cur_run.data.params
        params = {}
        for key, value in self.experiment_param.items():
            if key not in logged:
                params[key] = value
            elif str(value) != logged[key]:
                self.client.set_tag(self.run_id, f"resumed.{key}", f"{logged[key]} -> {value}")
        self.experiment_param = params

    def _last_steps(self) -> dict[str, int]:
        """Last logged step per metric of the resumed run."""
        keys = self.client.get_run(self.run_id).data.metrics
        return {k: max((m.step for m in self.client.get_metric_history(self.run_id, k)), default=-1) for k in keys}

    def _log_metrics(self, metrics: dict, step: int | None = None) -> None:
        source = self.share_with if self.share_with is not None else self
        logged = getattr(source, "_logged_steps", None)
        if logged and step is not None:  # a resumed run: never log a step twice
            metrics = {k: v for k, v in metrics.items() if step > logged.get(k, -1)}
        if metrics:
            super()._log_metrics(metrics, step)

    def fail(self, status: str = "FAILED") -> None:
        """End the run with ``status``: FAILED (training raised) or KILLED (the user interrupted it)."""
        if self.cur_run is not None:
            self.client.set_terminated(self.cur_run.info.run_id, status)
            self.cur_run = None

    def trains_in(self, run_dir: str) -> None:
        """Tag the run with ``run_dir`` and this host, so a later start can tell whether its training died."""
        self.tags.update({RUN_DIR_TAG: os.path.abspath(run_dir), HOST_TAG: socket.gethostname()})

    def close_abandoned_runs(self, abandoned: Callable[[str], bool]) -> list[AbandonedRun]:
        """Close as KILLED this experiment's runs left RUNNING by a training on this host whose run folder
        ``abandoned`` judges dead (SIGKILL, a power cut: no live process claims it). Returns the runs closed."""
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return []
        closed, host = [], socket.gethostname()
        for run in self.client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
            folder = run.data.tags.get(RUN_DIR_TAG)
            if not folder or run.data.tags.get(HOST_TAG) != host or not abandoned(folder):
                continue
            self.client.set_terminated(run.info.run_id, "KILLED")
            closed.append(AbandonedRun(run.info.run_id, run.info.run_name, folder))
        return closed

