"""Inference: options, the predictor, folder runs, evaluation, robustness, export."""
