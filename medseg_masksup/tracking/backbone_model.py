"""The trained backbone as an MLflow model: a ``torch.export`` program (no pickle) that
``mlflow.pyfunc.load_model(uri).predict(batch)`` runs on a preprocessed float32 batch.

:func:`log_backbone_model` logs it as an MLflow 3 *LoggedModel* of the training run (it shows under
the run's "Logged models" and the experiment's "Models" tab, with the metrics of the best epoch);
:func:`save_backbone_model` writes the same model to a folder.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..record import TrainingRecord

MODEL_NAME = "backbone"


def model_signature(record: TrainingRecord):
    """Unnamed tensor in, unnamed tensor out, so ``predict`` takes a bare ndarray:
    input ``(batch, in_channels, *img_size)`` float32, output logits ``(batch, out_channels, *img_size)``."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, record.in_channels, *record.img_size))]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, record.out_channels, *record.img_size))]),
    )


def input_example(record: TrainingRecord) -> np.ndarray:
    """A zero batch of 2 (batch 2 keeps the batch dimension dynamic in the export)."""
    return np.zeros((2, record.in_channels, *record.img_size), np.float32)


def pip_requirements() -> list[str]:
    """What serving the model needs: the exported program only needs the torch that exported it
    (MLflow adds its own pin). Our package is not needed, and no index serves it."""
    return [f"torch=={torch.__version__.split('+')[0]}", f"numpy>={np.__version__.split('.')[0]}"]


def _model_kwargs(network: torch.nn.Module, record: TrainingRecord) -> dict:
    return dict(
        pytorch_model=network.eval(), serialization_format="pt2", signature=model_signature(record),
        input_example=input_example(record), pip_requirements=pip_requirements(),
        metadata={"training_record": record.state_dict()},
    )


def save_backbone_model(network: torch.nn.Module, record: TrainingRecord, path: str | Path) -> Path:
    """Save ``network`` (bare backbone) as an MLflow PyTorch model folder at ``path``."""
    import mlflow.pytorch

    mlflow.pytorch.save_model(path=str(path), **_model_kwargs(network, record))
    return Path(path)


@contextmanager
def using_tracking_uri(uri: str):
    """MLflow's fluent API (``log_model``) on ``uri`` for the duration, the previous URI restored after."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


def log_backbone_model(
    client,
    run_id: str,
    network: torch.nn.Module,
    record: TrainingRecord,
    step: int = 0,
    registered_model_name: str | None = None,
):
    """Log the backbone as a LoggedModel of ``run_id`` (in the run's experiment), linked to the
    run's metrics at ``step`` (the best epoch); register it as ``registered_model_name`` if given.
    Returns MLflow's ``ModelInfo`` (``model_uri`` is ``models:/<model id>``)."""
    import mlflow.pytorch

    run = client.get_run(run_id)
    model = client.create_logged_model(
        run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id, model_type="segmentation",
        params={k: str(v) for k, v in record.params().items()},
        tags={"method": record.method, "dataset": record.dataset},
    )
    with using_tracking_uri(client.tracking_uri):
        return mlflow.pytorch.log_model(
            name=MODEL_NAME, model_id=model.model_id, run_id=run_id, step=int(step),
            registered_model_name=registered_model_name or None, **_model_kwargs(network, record),
        )
