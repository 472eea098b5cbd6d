"""End-of-training report: learning curves, overlays, threshold floor, all logged to the MLflow run."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

import torch
from monai.utils import min_version, optional_import

from ..checkpoint import BEST, SUMMARY, load_checkpoint
from .figures import learning_curves, overlay_panel
from ..io.atomic import write_json
from ..method.masking import MaskGenerator
from ..data.preprocessing import make_inferer
from ..record import TrainingRecord
from ..tracking.backbone_model import log_backbone_model
from .threshold_baseline import dice, threshold_dice
from ..tracking.run_handler import MLflowRunHandler, training_view_url

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

TRAIN_METRICS = ("train_loss", "train_loss_seg", "train_loss_masked", "train_loss_consistency")


class TrainingReport:
    """Trainer handler that keeps the per-epoch history and, when training completes, writes
    ``learning_curves.png``, ``overlay_<id>.png`` (image | masked input | truth | prediction of the
    best checkpoint), ``training_record.json`` and ``summary.json`` under ``run_dir``, and logs them
    (figures at the top level of the artifacts, where MLflow's compare view shows them side by side),
    the best checkpoint, the invoked config files and the best backbone as an MLflow LoggedModel
    (registered as ``register_model`` when given) to the MLflow run of ``mlflow_handler``.

    Attach it *before* the MLflow handler so the run is still open when it logs.
    """

    #: writes files and logs to MLflow: attached on rank 0 only under torchrun (:func:`.distributed.active_handlers`)
    main_process_only = True

    def __init__(
        self,
        run_dir: str,
        validator,
        val_dataset,
        network_def: torch.nn.Module,
        record: TrainingRecord,
        mlflow_handler: MLflowRunHandler | None = None,
        n_overlays: int = 4,
        checkpoint_name: str = BEST,
        config_files: list[str] | None = None,
        register_model: str = "",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.validator = validator
        self.val_dataset = val_dataset
        self.network_def = network_def
        self.record = record
        self.mlflow = mlflow_handler
        self.n_overlays = n_overlays
        self.checkpoint_path = self.run_dir / checkpoint_name
        self.config_files = config_files if config_files is not None else invoked_config_files()
        self.register_model = register_model
        self.history: list[dict[str, float]] = []
        self.threshold_dice: float | None = None

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state.get("history", []))

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lo, hi = self.record.normalised_range
        a, b = self.record.intensity_range
        scores = []
        for item in self.val_dataset:
            raw = ((item["image"].numpy() - lo) / (hi - lo)) * (b - a) + a
            scores.append(threshold_dice(raw, _resized(item["label"], raw.shape[1:]).numpy()))
        self.threshold_dice = float(sum(scores) / max(len(scores), 1))
        engine.logger.info(f"threshold floor: Otsu global threshold reaches Dice {self.threshold_dice:.4f} on validation")

    def epoch_completed(self, engine) -> None:
        row = {"epoch": engine.state.epoch}
        row.update({k: float(v) for k, v in engine.state.metrics.items() if k in TRAIN_METRICS})
        row.update({k: float(v) for k, v in self.validator.state.metrics.items()})
        if self.threshold_dice is not None:
            row["threshold_baseline_dice"] = self.threshold_dice
        self.history.append(row)

    def _network(self, weights: dict[str, torch.Tensor] | None, device: torch.device | str) -> torch.nn.Module:
        """A copy of the network on ``device`` with ``weights`` (the best checkpoint's; as it is without them)."""
        net = copy.deepcopy(self.network_def).to(device)
        if weights is not None:
            net.load_state_dict(weights)
        return net

    @torch.no_grad()
    def _overlays(self, device: torch.device, weights: dict[str, torch.Tensor] | None) -> list[Path]:
        net = self._network(weights, device).eval()
        masker = MaskGenerator(self.record.mask_kind, self.record.mask_ratio, seed=self.record.seed)
        inferer = make_inferer(self.record)
        paths = []
        for i in range(min(self.n_overlays, len(self.val_dataset))):
            item = self.val_dataset[i]
            x = torch.as_tensor(item["image"])[None].float().to(device)
            pred = torch.sigmoid(_first(inferer(x, net))) > self.record.prob_threshold
            masked, _ = masker.apply(x)
            label = _resized(item["label"], x.shape[2:]).numpy()
            name = Path(str(item["image"].meta.get("filename_or_obj", f"case{i}"))).stem if hasattr(item["image"], "meta") else f"case{i}"
            paths.append(
                overlay_panel(
                    x[0].cpu().numpy(), masked[0].cpu().numpy(), label, pred[0].cpu().numpy(),
                    self.run_dir / "figures" / f"overlay_{name}.png",
                    title=f"{self.record.method} · {name}",
                    dice=dice(pred[0].cpu().numpy() > 0, label > 0.5),
                )
            )
        return paths

    def _log_model(self, engine, client, run_id: str, best_epoch: int, weights: dict[str, torch.Tensor] | None) -> None:
        """The best backbone as an MLflow LoggedModel of the run (registered as ``register_model`` if set);
        a network torch.export cannot trace only costs a warning."""
        net = self._network(weights, "cpu")
        try:
            info = log_backbone_model(client, run_id, net, self.record, step=best_epoch,
                                      registered_model_name=self.register_model or None)
            client.set_tag(run_id, "mlflow_model", info.model_uri)
        except Exception as err:  # noqa: BLE001 - the checkpoint artifact is still there
            engine.logger.warning(f"the MLflow model was not logged ({type(err).__name__}: {err}); "
                                  f"the checkpoint artifact checkpoints/model.pt holds the weights")

    def completed(self, engine) -> None:
        figures = self.run_dir / "figures"
        curves = learning_curves(self.history, figures / "learning_curves.png", title=f"{self.record.method} on {self.record.dataset}")
        weights = load_checkpoint(self.checkpoint_path)["model"] if self.checkpoint_path.is_file() else None  # read once
        overlays = self._overlays(engine.state.device, weights)
        summary = {
            "method": self.record.method,
            "best_val_dice": float(self.validator.state.best_metric),
            "best_epoch": int(self.validator.state.best_metric_epoch),
            "threshold_baseline_dice": self.threshold_dice,
            "epochs": engine.state.epoch,
            "checkpoint": str(self.checkpoint_path),
            "mlflow_run_id": self.mlflow.run_id if self.mlflow else None,
        }
        self.record.mlflow_run_id = summary["mlflow_run_id"] or ""
        staged = write_json(self.run_dir / "config" / SUMMARY, summary)  # run_dir/summary.json comes last
        write_json(self.run_dir / "training_record.json", self.record.state_dict())
        write_json(self.run_dir / "history.json", self.history)
        config_dir = self.run_dir / "config"
        config_dir.mkdir(exist_ok=True)
        for cfg in self.config_files:
            if os.path.isfile(cfg):
                shutil.copy(cfg, config_dir / Path(cfg).name)
        write_json(config_dir / "command.json", {"argv": sys.argv})
        if self.mlflow is not None and self.mlflow.cur_run is not None:
            client, run_id = self.mlflow.client, self.mlflow.cur_run.info.run_id
            client.log_metric(run_id, "threshold_baseline_dice", self.threshold_dice or 0.0)
            client.log_metric(run_id, "best_val_dice", summary["best_val_dice"], step=summary["best_epoch"])
            client.set_tag(run_id, "best_epoch", str(summary["best_epoch"]))
            client.set_tag(run_id, "run_dir", str(self.run_dir))
            for path in [curves, *overlays]:  # top level: the compare view shows them side by side
                client.log_artifact(run_id, str(path))
            for name in ("training_record.json", "history.json"):  # summary.json: staged under config/
                client.log_artifact(run_id, str(self.run_dir / name), "config")
            client.log_artifacts(run_id, str(config_dir), "config")
            if self.checkpoint_path.is_file():
                client.log_artifact(run_id, str(self.checkpoint_path), "checkpoints")
            self._log_model(engine, client, run_id, summary["best_epoch"], weights)
            self.mlflow.close()  # FINISHED before summary.json marks the run folder finished
        # the finished marker, written last: a run stopped before this point is resumed into this state
        write_json(self.run_dir / SUMMARY, summary)
        staged.unlink()
        engine.logger.info(
            f"best validation Dice {summary['best_val_dice']:.4f} at epoch {summary['best_epoch']} "
            f"(Otsu threshold floor {self.threshold_dice:.4f}); checkpoint {self.checkpoint_path}"
        )
        print(
            f"\nMaskSup[{self.record.method}] best val Dice {summary['best_val_dice']:.4f} (epoch {summary['best_epoch']}), "
            f"threshold floor {self.threshold_dice:.4f}\n  checkpoint: {self.checkpoint_path}\n  report:     {self.run_dir}\n"
            f"  MLflow:     mlflow ui --backend-store-uri {self.mlflow.client.tracking_uri if self.mlflow else '-'}"
            + (f"\n              then open {training_view_url(self.mlflow.experiment.experiment_id)}"
               if self.mlflow is not None and self.mlflow.experiment is not None else ""),
            flush=True,
        )


def _resized(label: torch.Tensor, size) -> torch.Tensor:
    """A 0/1 label at ``size`` (nearest neighbour): validation keeps labels at their native size."""
    label = torch.as_tensor(label).float()
    if tuple(label.shape[1:]) == tuple(size):
        return label
    return torch.nn.functional.interpolate(label[None], size=tuple(size), mode="nearest")[0]


def _first(output):
    return output[0] if isinstance(output, (list, tuple)) else output


def invoked_config_files(argv: list[str] | None = None) -> list[str]:
    """The ``--config_file`` paths of a ``python -m monai.bundle run`` command line."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--config_file=") else (argv[i + 1] if arg == "--config_file" and i + 1 < len(argv) else None)
        if value is None:
            continue
        value = value.strip()
        if value.startswith("["):
            return [v.strip().strip("'\"") for v in value.strip("[]").split(",") if v.strip()]
        return [value]
    return []
