"""Datalists as MLflow datasets: one per split, the file fingerprint as digest, the split as context."""

import pytest
import mlflow

from medseg_masksup.data.datalist import fingerprint
from medseg_masksup.tracking.datasets import log_datalists
from medseg_masksup.tracking.store import sqlite_uri


@pytest.mark.integration
def test_splits_become_run_inputs_with_fingerprint_digests(tmp_path):
    items = []
    for i in range(3):
        for kind in ("img", "mask"):
            (tmp_path / f"{kind}{i}.png").write_bytes(bytes([i, len(kind)]))
        items.append({"image": str(tmp_path / f"img{i}.png"), "label": str(tmp_path / f"mask{i}.png"), "fold": i % 2})
    client = mlflow.MlflowClient(sqlite_uri(str(tmp_path / "mlflow.db")))
    run = client.create_run(client.create_experiment("e"), run_name="r")
    log_datalists(client, run.info.run_id, {"training": items[:2], "validation": items[2:], "test": []},
                  "toy", str(tmp_path / "datalist.json"))
    inputs = {i.dataset.name: i for i in client.get_run(run.info.run_id).inputs.dataset_inputs}
    assert set(inputs) == {"toy-training", "toy-validation"}  # an empty split is not logged
    assert inputs["toy-training"].dataset.digest == fingerprint(items[:2])
    assert inputs["toy-validation"].dataset.digest == fingerprint(items[2:])
    assert [t.value for t in inputs["toy-validation"].tags] == ["validation"]
    assert '"num_rows": 2' in inputs["toy-training"].dataset.profile
    assert "datalist.json" in inputs["toy-training"].dataset.source
