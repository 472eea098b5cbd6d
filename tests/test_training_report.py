"""The end-of-training report reads the best checkpoint once and uses it for both the overlays and the MLflow model."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from infer_fixtures import make_record, save_checkpoint

from medseg_masksup.training import report as report_module
from medseg_masksup.training.report import TrainingReport


class _Client:
    tracking_uri = "sqlite:///unused.db"

    def __getattr__(self, name):  # log_metric, set_tag, log_artifact(s): nothing to record here
        return lambda *args, **kwargs: None


class _Handler:
    def __init__(self) -> None:
        self.client, self.run_id, self.experiment = _Client(), "run-1", None
        self.cur_run = SimpleNamespace(info=SimpleNamespace(run_id="run-1"))

    def close(self) -> None:
        self.cur_run = None


def test_completed_reads_model_pt_once_and_logs_its_weights(tmp_path, monkeypatch):
    record = make_record()
    best = torch.nn.Conv2d(3, 1, 3, padding=1)
    save_checkpoint(tmp_path / "model.pt", best, record)
    reads, logged = [], []
    load = report_module.load_checkpoint
    monkeypatch.setattr(report_module, "load_checkpoint", lambda path, **kw: reads.append(path) or load(path, **kw))
    monkeypatch.setattr(report_module, "log_backbone_model",
                        lambda client, run_id, net, rec, **kw: logged.append(net) or SimpleNamespace(model_uri="models:/m"))
    validator = SimpleNamespace(state=SimpleNamespace(best_metric=0.5, best_metric_epoch=1, metrics={}))
    report = TrainingReport(str(tmp_path), validator, [], torch.nn.Conv2d(3, 1, 3, padding=1), record,
                            mlflow_handler=_Handler(), n_overlays=0, config_files=[])
    report.threshold_dice = 0.1
    engine = SimpleNamespace(state=SimpleNamespace(epoch=1, device=torch.device("cpu")),
                             logger=SimpleNamespace(info=print, warning=print))
    report.completed(engine)
    assert reads == [tmp_path / "model.pt"]
    (net,) = logged
    assert all(torch.equal(net.state_dict()[k], v) for k, v in best.state_dict().items())
    assert (tmp_path / "summary.json").is_file() and not (tmp_path / "config" / "summary.json").exists()
