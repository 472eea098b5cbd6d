"""Training and validation datalists as MLflow datasets, so a run's "Datasets" says what it saw.

Each split becomes an ``mlflow.data`` pandas dataset (one row per item: image, label, fold …) whose
digest is the project's file fingerprint (:func:`medseg_masksup.data.datalist.fingerprint`: names and
bytes of every file), named ``<dataset>-<split>`` and logged as a run input with its context.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence


def datalist_dataset(items: Sequence[Mapping], name: str, source: str):
    """The items of one split as an MLflow ``PandasDataset`` with the fingerprint as digest."""
    import mlflow.data
    import pandas as pd

    from ..data.datalist import fingerprint

    frame = pd.DataFrame([{key: str(value) for key, value in item.items()} for item in items])
    with warnings.catch_warnings():  # MLflow registers its local-file source twice and warns that a path matches both
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        return mlflow.data.from_pandas(frame, source=str(source), name=name, digest=fingerprint(list(items)))


def log_datalists(client, run_id: str, splits: Mapping[str, Sequence[Mapping]], dataset: str, source: str) -> list:
    """Log each non-empty split (``{"training": items, "validation": items}``) as an input of ``run_id``
    with its split as context; returns the MLflow datasets."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    datasets, inputs = [], []
    for context, items in splits.items():
        if not items:
            continue
        ds = datalist_dataset(items, f"{dataset}-{context}", source)
        datasets.append(ds)
        inputs.append(DatasetInput(ds._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]))
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
    return datasets
