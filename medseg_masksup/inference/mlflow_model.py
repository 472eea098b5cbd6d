"""The trained backbone as an MLflow model (``torch.export`` program, no pickle) in the run's artifacts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..record import TrainingRecord

ARTIFACT_PATH = "mlflow_model"


def save_backbone_model(network: torch.nn.Module, record: TrainingRecord, path: str | Path) -> Path:
    """Save ``network`` (bare backbone, eval mode) as an MLflow PyTorch model at ``path``.

    Input: float32 ``(batch, in_channels, *img_size)`` already preprocessed as at training (see
    ``medseg_masksup.data.preprocessing``); output: logits ``(batch, out_channels, *img_size)``.
    """
    import mlflow.pytorch
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    shape = (record.in_channels, *record.img_size)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, *shape), "image")]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, record.out_channels, *record.img_size), "pred")]),
    )
    example = np.zeros((2, *shape), np.float32)  # batch 2 keeps the batch dimension dynamic in the export
    mlflow.pytorch.save_model(
        network.eval(), str(path), serialization_format="pt2", signature=signature, input_example=example,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", "monai", "medseg-masksup"],
        metadata={"training_record": record.state_dict()},
    )
    return Path(path)


def log_backbone_model(client, run_id: str, network: torch.nn.Module, record: TrainingRecord) -> str:
    """Save the backbone as an MLflow model and log it to ``run_id``; returns its ``runs:/`` URI."""
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_backbone_model(network, record, Path(tmp) / ARTIFACT_PATH)
        client.log_artifacts(run_id, str(model_dir), ARTIFACT_PATH)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"
