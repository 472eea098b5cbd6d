"""MLflow tracking: MONAI's MLFlowHandler, made to never adopt a stale run."""

from __future__ import annotations

from monai.handlers import MLFlowHandler
from monai.utils import min_version, optional_import

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")


def sqlite_uri(path: str) -> str:
    """``sqlite:///<absolute path>``: MLflow 3's local store (plain file stores are refused since 3.13)."""
    import os

    return "sqlite:///" + os.path.abspath(path)


class MLflowRunHandler(MLFlowHandler):
    """MLFlowHandler that opens a *new* run (or resumes ``run_id``) instead of adopting any unfinished run.

    MONAI's handler re-uses the oldest unfinished run of the same name, a crashed one included. Here:
    ``run_id`` resumes that run; ``share_with`` logs into another handler's run (e.g. the validator's
    metrics into the trainer's run); otherwise a fresh run named ``run_name`` is created. A run that
    ends in an exception is marked FAILED.
    """

    def __init__(self, *args, run_id: str | None = None, share_with: MLflowRunHandler | None = None, **kwargs) -> None:
        if kwargs.get("run_name") is None and share_with is None and run_id is None:
            raise ValueError("MLflowRunHandler needs a run_name (or run_id / share_with)")
        super().__init__(*args, **kwargs)
        self.run_id = run_id
        self.share_with = share_with

    def attach(self, engine) -> None:
        super().attach(engine)
        if self.share_with is None and not engine.has_event_handler(self._failed, Events.EXCEPTION_RAISED):
            engine.add_event_handler(Events.EXCEPTION_RAISED, self._failed)

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
            else:
                self.cur_run = self.client.create_run(self.experiment.experiment_id, run_name=self.run_name)
            self.run_id = self.cur_run.info.run_id
        super().start(engine)

    def _failed(self, engine, exc: BaseException) -> None:
        if self.cur_run is not None:
            self.client.set_terminated(self.cur_run.info.run_id, "FAILED")
            self.cur_run = None
        raise exc
