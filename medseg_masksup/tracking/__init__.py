"""Experiment tracking: everything MLflow, for training, evaluate and robustness alike.

``store.py`` (the ``sqlite:///`` store: its URI, created by one process at a time), ``portable_store.py``
(a store folder that can be moved), ``server_probe.py`` (is the tracking server there?), ``run_handler.py``
(MONAI's MLflow handler, never adopting a stale run), ``datasets.py`` (datalists as MLflow datasets) and
``backbone_model.py`` (the trained backbone as an MLflow model). It imports nothing from ``training/``, so
every layer above the model can log runs.
"""
