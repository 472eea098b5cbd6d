"""The training bundle on real GlaS images (instance-id labels), through a minimal datalist."""

from __future__ import annotations

import json

import pytest
import mlflow
import torch

from medseg_masksup.tracking.store import sqlite_uri
from test_bundle_training import run_bundle


def write_glas_datalist(glas_train_folder, out_dir, folds: int = 5):
    """The small conversion for this test: Train_Folder/{img,labelcol}/N.png → datalist.json (labels kept as ids)."""
    images = sorted((glas_train_folder / "img").glob("*.png"), key=lambda p: int(p.stem))
    items = [
        {"image": str(p), "label": str(glas_train_folder / "labelcol" / p.name), "fold": i % folds, "id": p.stem}
        for i, p in enumerate(images)
    ]
    path = out_dir / "datalist.json"
    path.write_text(json.dumps({"name": "glas", "training": items, "validation": [], "test": []}))
    return path, len(items)


@pytest.mark.integration
def test_bundle_trains_on_real_glas(shared_data, tmp_path):
    datalist, n = write_glas_datalist(shared_data / "glas" / "Train_Folder", tmp_path)
    assert n == 85
    out = tmp_path / "out"
    proc = run_bundle(out, "--datalist", str(datalist), "--img_size", "[64,64]")
    assert "best val Dice" in proc.stdout
    ckpt = next(out.glob("glas/masksup/*/model.pt"))
    record = torch.load(ckpt, weights_only=True)["training_record"]
    assert record["dataset"] == "glas" and record["n_train"] == 68 and record["n_val"] == 17
    client = mlflow.MlflowClient(sqlite_uri(str(out / "mlflow.db")))
    experiment = client.get_experiment_by_name("masksup-glas")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["dataset_fingerprint"].startswith("170:")
    dice = run.data.metrics["val_dice"]
    assert 0.0 <= dice <= 1.0
