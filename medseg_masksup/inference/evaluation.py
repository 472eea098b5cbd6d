"""Score a checkpoint on a labelled datalist: per-case Dice, IoU, HD95, precision, recall.

Each image goes through exactly the inference path (:class:`medseg_masksup.inference.predictor.Predictor`:
training preprocessing from the checkpoint's record, probabilities resized back to the image), and
the mask is compared with the label at the label's native resolution — what a user of
``medseg-masksup infer`` would get. Labels are read and binarised as training reads them
(:func:`medseg_masksup.io.read_label`: stored values, palette indices included, ``first channel > label_threshold``;
a label with NaN / inf values is an error naming the file).

Metrics come from MONAI (``DiceMetric``, ``MeanIoU``, ``HausdorffDistanceMetric(percentile=95)``,
``ConfusionMatrixMetric``). HD95 is in mm when the image has a known spacing (NIfTI, DICOM,
NRRD/MHA), in pixels otherwise. Conventions for empty masks: prediction and label both empty →
Dice = IoU = precision = recall = 1, HD95 = 0; only one empty → Dice = IoU = 0, HD95 undefined
(NaN), and precision (no prediction) or recall (no label) undefined (NaN). NaN values are left out
of mean ± std (population std), and the number of cases each statistic is over is reported.

With ``uncertainty`` each case also gets the candidate quality scores of :mod:`medseg_masksup.quality` (seeded
passes beside the same mask), judged by risk–coverage against its Dice (AURC, oracle, chance …, a figure); with
``write_quality`` the review threshold is chosen on these (held-out) cases and stored beside the checkpoint.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import NothingProcessedError, UserError
from ..record import TrainingRecord
from ..data.datalist import load_items
from ..tracking.server_probe import require_reachable
from .options import InferenceOptions
from .worst_cases import WorstCases

METRICS = ("dice", "iou", "hd95", "precision", "recall")


# ----------------------------------------------------------------------------- metrics


def case_metrics(pred: np.ndarray, label: np.ndarray, spacing: Sequence[float] | None = None) -> dict[str, float]:
    """Dice, IoU, HD95, precision and recall of two binary masks of the same shape (see module doc)."""
    from monai.metrics import ConfusionMatrixMetric, DiceMetric, HausdorffDistanceMetric, MeanIoU

    pred, label = np.asarray(pred, dtype=bool), np.asarray(label, dtype=bool)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if not pred.any() and not label.any():
        return {"dice": 1.0, "iou": 1.0, "hd95": 0.0, "precision": 1.0, "recall": 1.0}
    p = torch.from_numpy(pred)[None, None].float()
    y = torch.from_numpy(label)[None, None].float()
    out = {
        "dice": float(DiceMetric(include_background=True, reduction="none", ignore_empty=False)(p, y).item()),
        "iou": float(MeanIoU(include_background=True, reduction="none", ignore_empty=False)(p, y).item()),
        "hd95": math.nan,
    }
    if pred.any() and label.any():
        sp = None if spacing is None else [float(s) for s in list(spacing)[: pred.ndim]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")(p, y, spacing=sp)
        out["hd95"] = float(hd.item())
    confusion = ConfusionMatrixMetric(include_background=True, metric_name=["precision", "recall"],
                                      reduction="none", compute_sample=True)
    confusion(p, y)
    precision, recall = confusion.aggregate()
    out["precision"], out["recall"] = float(precision.item()), float(recall.item())
    return out


def summarise(rows: list[dict[str, Any]], metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "median", "q1", "q3", "iqr", "n"}}`` over the finite values of the rows
    (population std; quartiles by linear interpolation, numpy's default)."""
    out = {}
    for name in metrics:
        values = np.array([float(r[name]) for r in rows if r.get(name) not in (None, "")], dtype=float)
        values = values[np.isfinite(values)]
        out[name] = {
            "mean": float(values.mean()) if values.size else math.nan,
            "std": float(values.std()) if values.size else math.nan,
            **_quartiles(values),
            "n": int(values.size),
        }
    return out


def _quartiles(values: np.ndarray) -> dict[str, float]:
    if not values.size:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "iqr": math.nan}
    q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    return {"median": median, "q1": q1, "q3": q3, "iqr": q3 - q1}


def hd95_unit(rows: list[dict[str, Any]]) -> str:
    """``mm`` or ``px`` when every case agrees, else ``mm/px (mixed)``."""
    units = sorted({str(r.get("hd95_unit") or "px") for r in rows})
    return units[0] if len(units) == 1 else "mm/px (mixed)"


# ----------------------------------------------------------------------------- MLflow


def log_run(
    tracking_uri: str,
    record: TrainingRecord,
    training_run: str,
    run_name: str,
    params: dict[str, Any],
    metrics: list[tuple[str, float, int]],
    artifacts: Sequence[Path],
    tags: dict[str, str] | None = None,
    tables: dict[str, list[dict[str, Any]]] | None = None,
) -> tuple[str, str]:
    """One finished MLflow run in the training run's experiment; returns (experiment name, run id).

    The run carries the training run id as tag and param ``training_run_id``; when that run is in
    the same store, the new run is also filed under it (``mlflow.parentRunId``). ``tables`` are logged
    with ``log_table`` (``{artifact file: rows}``), shown as tables in the run's artifacts and Evaluation tab.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    from ..tracking.portable_store import create_experiment, rebase_artifacts
    from ..tracking.store import ensure_store, store_lock

    experiment_name = record.mlflow_experiment or f"masksup-{record.dataset or 'evaluation'}"
    with store_lock(tracking_uri):  # runs started together must not race to create the store or experiment
        ensure_store(tracking_uri)
        client = MlflowClient(tracking_uri=tracking_uri)
        rebase_artifacts(tracking_uri)
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else create_experiment(client, experiment_name)
    all_tags = {"training_run_id": training_run or "unknown", **(tags or {})}
    if training_run:
        try:
            client.get_run(training_run)
            all_tags["mlflow.parentRunId"] = training_run
        except Exception:  # noqa: BLE001 - the training run lives in another store: keep the id only
            pass
    run = client.create_run(experiment_id, run_name=run_name, tags=all_tags)
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        flat = {**record.params(), **{k: str(v) for k, v in params.items()}, "training_run_id": training_run or "unknown"}
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in flat.items()])
        finite = [Metric(k, float(v), now, int(step)) for k, v, step in metrics if v is not None and math.isfinite(float(v))]
        for start in range(0, len(finite), 900):
            client.log_batch(run_id, metrics=finite[start : start + 900])
        for path in artifacts:
            client.log_artifact(run_id, str(path))
        for artifact_file, rows in (tables or {}).items():
            client.log_table(run_id, data=_table(rows), artifact_file=artifact_file)
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    return experiment_name, run_id


def _table(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows).astype(object).where(lambda frame: frame.notna(), None)


def default_tracking_uri(output_dir: str | Path, tracking_uri: str | None) -> str:
    """``tracking_uri`` if given, else ``sqlite:///<output_dir>/mlflow.db``."""
    from ..tracking.store import sqlite_uri

    return tracking_uri or sqlite_uri(str(Path(output_dir) / "mlflow.db"))


# ----------------------------------------------------------------------------- evaluation


def open_checkpoint_for_scoring(ckpt: str | Path, datalist: str | Path, options: InferenceOptions | None = None,
                                **option_overrides: Any):
    """What evaluation and robustness start from: ``(options, predictor, first checkpoint file)``, after refusing
    an empty ``ckpt`` or ``datalist``; several checkpoints form an ensemble (:meth:`Predictor.from_checkpoint`)."""
    from ..checkpoint import resolve_checkpoint
    from .predictor import Predictor

    if not str(ckpt or ""):
        raise UserError("no checkpoint given: pass --ckpt <model.pt or training run folder>")
    if not str(datalist or ""):
        raise UserError("no datalist given: pass --datalist <datalist.json>")
    options = InferenceOptions.build(options, **option_overrides)
    predictor = Predictor.from_checkpoint(ckpt, options)
    ckpt_path = resolve_checkpoint(ckpt if isinstance(ckpt, (str, Path)) else list(ckpt)[0])
    return options, predictor, ckpt_path


@dataclass
class EvaluationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    split: str = ""
    per_case_csv: Path | None = None
    summary_json: Path | None = None
    mlflow_run_id: str = ""
    units: dict[str, str] = field(default_factory=dict)
    worst_figures: list[Path] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)
    quality_lines: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"error: {r['message']}" for r in self.rows if r["status"] != "ok"]
        ok = sum(1 for r in self.rows if r["status"] == "ok")
        out.append(f"evaluated {ok} of {len(self.rows)} cases ({self.split})")
        out.append(f"  {'':<14} {'mean ± std':>17}  {'median':>8}  {'IQR (q1–q3)':>17}")
        for name, s in self.summary.items():
            label = f"{name} ({self.units[name]})" if name in self.units else name
            out.append(f"  {label:<14} {s['mean']:>8.4f} ± {s['std']:<6.4f}  {s['median']:>8.4f}  "
                       f"{s['q1']:>8.4f}–{s['q3']:<8.4f} (n={s['n']})")
        out += self.quality_lines
        if self.worst_figures:
            out.append(f"worst cases ({len(self.worst_figures)}, lowest Dice first): {self.worst_figures[0].parent}")
        out.append(f"per-case table: {self.per_case_csv}")
        return out


CSV_COLUMNS = ("case", "image", "label", "status", "message", *METRICS, "pred_px", "label_px", "hd95_unit")


def evaluate_checkpoint(
    ckpt: str | Path,
    datalist: str | Path,
    output_dir: str | Path,
    split: str = "auto",
    options: InferenceOptions | None = None,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    verbose: bool = True,
    tags: dict[str, str] | None = None,
    worst_cases: int = 4,
    uncertainty: bool = False,
    uncertainty_settings: dict[str, Any] | None = None,
    write_quality: bool = False,
    review_coverage: float = 0.9,
    quality_score: str = "auto",
    **option_overrides: Any,
) -> EvaluationReport:
    """Evaluate ``ckpt`` (one checkpoint, or several as an ensemble) on ``datalist``; writes ``per_case.csv``,
    ``summary.json`` and overlays of the ``worst_cases`` lowest-Dice cases (``worst_cases/``), and logs them to
    an MLflow run nested under the (first) checkpoint's training run (per-case metrics as a table, summary
    statistics as metrics).

    ``options`` (:class:`~medseg_masksup.inference.options.InferenceOptions`) with ``option_overrides``
    (``tta=True``, ``progress=False`` …) applied says how to predict. ``uncertainty`` adds the candidate quality
    scores (``uncertainty_settings``: :class:`~medseg_masksup.quality.settings.QualitySettings` fields) to
    ``per_case.csv``, their risk–coverage table to ``summary.json`` and ``risk_coverage.png``; ``write_quality``
    chooses the review threshold of ``quality_score`` (``auto``: the lowest AURC) for ``review_coverage`` on these
    cases and writes ``quality.json`` beside the checkpoint (:mod:`medseg_masksup.quality.review`).
    """
    from tqdm.auto import tqdm

    from ..checkpoint import checkpoint_names, training_run_id
    from ..io import read_case, read_label
    from ..io.atomic import write_csv, write_json

    require_reachable(tracking_uri)  # an http(s) server that does not answer: one line now, not after the work
    settings = _quality_settings(uncertainty, uncertainty_settings, write_quality, review_coverage, quality_score, ckpt)
    options, predictor, ckpt_path = open_checkpoint_for_scoring(ckpt, datalist, options, **option_overrides)
    record = predictor.record
    items, chosen = load_items(datalist, split, record.val_fold)
    if write_quality:
        from ..quality.review import HELD_OUT_SPLITS

        if chosen not in HELD_OUT_SPLITS:
            raise UserError(f"--write_quality chooses the review threshold on held-out cases; split {chosen!r} is not "
                            f"held out (use {', '.join(HELD_OUT_SPLITS)})")
    out_root = Path(output_dir)
    out_root.mkdir(parents=True, exist_ok=True)

    report = EvaluationReport(split=chosen)
    worst = WorstCases(int(worst_cases))
    for item in tqdm(items, desc="evaluate", unit="case", disable=not options.progress):
        name = str(item.get("id") or Path(item["image"]).name)
        row: dict[str, Any] = {"case": name, "image": item["image"], "label": item["label"], "status": "ok", "message": ""}
        try:
            image = read_case(item["image"])
            label = read_label(item["label"], record.label_threshold)
            if label.shape != image.spatial_shape:
                raise UserError(f"{item['label']}: label shape {label.shape} does not match image shape {image.spatial_shape}")
            if settings is None:
                mask, _, _ = predictor.segment(image.image, image.stored_bits)
            else:
                from ..quality.passes import assess

                assessed = assess(predictor, image.image, settings, image.stored_bits)
                mask = assessed.mask
                row.update(assessed.scores)
            row.update(case_metrics(mask, label, image.spacing))
            row.update(pred_px=int(mask.sum()), label_px=int(label.sum()), hd95_unit="mm" if image.spacing else "px")
            worst.add(name, row["dice"], image.image, label, mask)
        except UserError as err:
            row.update(status="error", message=str(err))
        except Exception as err:  # noqa: BLE001 - reported per case with the file
            row.update(status="error", message=f"{item['image']}: {type(err).__name__}: {err}")
        report.rows.append(row)
    ok_rows = [r for r in report.rows if r["status"] == "ok"]
    if not ok_rows:
        raise NothingProcessedError(f"no case of {datalist} could be evaluated (first error: {report.rows[0]['message']})")
    report.summary = summarise(ok_rows)
    report.units = {"hd95": hd95_unit(ok_rows)}
    report.worst_figures = worst.write(out_root / "worst_cases")
    report.per_case_csv = write_csv(out_root / "per_case.csv", report.rows,
                                    CSV_COLUMNS + (settings.scores if settings is not None else ()))
    figures = list(report.worst_figures)
    if settings is not None:
        figures.append(_judge_scores(report, ok_rows, settings, out_root))
        ranked_by = report.quality["best"] if quality_score == "auto" else quality_score
        least = _draw_least_trusted(ok_rows, ranked_by, settings, predictor, record, review_coverage, int(worst_cases),
                                    out_root / "least_trusted.png")
        if least is not None:
            figures.append(least)
            report.quality["least_trusted_figure"] = least.name
            report.quality_lines.append(f"least-trusted cases by {ranked_by}, beside their uncertainty maps: {least}")
    train_run = training_run_id(ckpt_path, record)
    uri = default_tracking_uri(out_root, tracking_uri)
    summary = {
        "checkpoint": checkpoint_names(ckpt), "datalist": str(datalist), "split": chosen, "n_cases": len(report.rows),
        "n_evaluated": len(ok_rows), "metrics": report.summary, "units": report.units,
        "worst_cases": [p.name for p in report.worst_figures], "training_run_id": train_run, "tracking_uri": uri,
        "options": options.summary(predictor.threshold, predictor.mode),
        "training_record": record.state_dict(),
    }
    if settings is not None:
        if write_quality:
            report.quality["quality_json"] = str(_write_review_flag(
                report, ok_rows, settings, quality_score, review_coverage, predictor, ckpt_path, datalist, chosen))
        summary["uncertainty"] = report.quality
    report.summary_json = write_json(out_root / "summary.json", summary)
    # summary statistics only: per-case values go to the table (a metric over "step = case index" draws a meaningless line)
    metrics = [(f"eval_{k}_{stat}", v[stat], 0) for k, v in report.summary.items() for stat in ("mean", "std", "median", "iqr")]
    for name, row in report.quality.get("scores", {}).items():
        metrics += [(f"eval_{stat}_{name}", row[stat], 0) for stat in ("aurc", "gap_closed", "spearman", "worst_precision")]
    if report.quality.get("scores"):
        first = next(iter(report.quality["scores"].values()))
        metrics += [("eval_aurc_oracle", first["oracle"], 0), ("eval_aurc_chance", first["chance"], 0)]
    _, report.mlflow_run_id = log_run(
        uri, record, train_run, run_name or f"evaluate-{record.method}-{chosen}",
        params={"checkpoint": ckpt_path, "ensemble_size": len(predictor.networks), "datalist": datalist, "split": chosen,
                "n_cases": len(ok_rows), "hd95_unit": report.units["hd95"], **summary["options"]},
        metrics=metrics, artifacts=[report.per_case_csv, report.summary_json, *figures],
        tags={"kind": "evaluation", **(tags or {})}, tables={"per_case.json": report.rows},
    )
    summary["mlflow_run_id"] = report.mlflow_run_id
    write_json(out_root / "summary.json", summary)
    if verbose:
        for line in report.lines():
            print(line, flush=True)
        print(f"MLflow run {report.mlflow_run_id} in {uri}", flush=True)
    return report


# ----------------------------------------------------------------------------- quality scores


def _quality_settings(uncertainty: bool, overrides: dict[str, Any] | None, write_quality: bool, coverage: float,
                      score: str, ckpt) -> Any:
    """The pass settings (``None`` without ``uncertainty``), after refusing inconsistent quality options in one line."""
    from ..quality.settings import QualitySettings, score_info

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not uncertainty:
        if given or write_quality:
            named = ", ".join([*given, *(["write_quality"] if write_quality else [])])
            raise UserError(f"{named} only apply with --uncertainty; add it")
        return None
    settings = QualitySettings.build(None, **given)
    if score != "auto" and score_info(score).name not in settings.scores:
        raise UserError(f"quality score {score} needs passes that these settings do not run ({settings.passes})")
    if write_quality:
        if not 0.0 < float(coverage) <= 1.0:
            raise UserError(f"--review_coverage must lie in (0, 1], got {coverage}")
        if not isinstance(ckpt, (str, Path)) and len(list(ckpt)) != 1:
            raise UserError("--write_quality needs one checkpoint: a review threshold belongs to one model, not an ensemble")
    return settings


def _judge_scores(report: EvaluationReport, ok_rows: list[dict[str, Any]], settings, out_root: Path) -> Path:
    """Risk–coverage of every candidate score over the evaluated cases: table, lines and figure."""
    from ..quality.figure import plot_risk_coverage
    from ..quality.risk_coverage import best_score, candidate_table, table_lines

    table = candidate_table(ok_rows, settings.scores)
    figure = plot_risk_coverage(table, [float(r["dice"]) for r in ok_rows], out_root / "risk_coverage.png")
    report.quality = {"passes": settings.as_dict(), "best": best_score(table), "figure": figure.name,
                      "scores": {name: {k: v for k, v in row.items() if k not in ("coverage", "selective_risk")}
                                 for name, row in table.items()}}
    report.quality_lines = [f"quality scores ({settings.describe()}) by risk-coverage over {len(ok_rows)} cases "
                            f"(AURC lower is better; gap: share of chance-to-oracle closed):", *table_lines(table),
                            f"risk-coverage figure: {figure}"]
    return figure


def _draw_least_trusted(ok_rows: list[dict[str, Any]], score: str, settings, predictor, record, coverage: float, n: int,
                        path: Path) -> Path | None:
    """The ``n`` cases ``score`` trusts least, re-assessed (the passes are seeded, so the maps are the ones the
    scores came from) and drawn beside their uncertainty maps (:mod:`medseg_masksup.quality.least_trusted`)."""
    from ..io import read_case, read_label
    from ..io.overlay import display_rgb, overlay_slice_index
    from ..quality.least_trusted import DrawnCase, flagged_below, least_trusted, plot_least_trusted
    from ..quality.passes import assess

    flagged = flagged_below(ok_rows, score, coverage)
    cases = []
    for rank, row in least_trusted(ok_rows, score, n):
        image = read_case(row["image"])
        truth = read_label(row["label"], record.label_threshold)
        assessed = assess(predictor, image.image, settings, image.stored_bits)
        pixels, pred, uncertainty = image.image, np.asarray(assessed.mask, bool), assessed.uncertainty
        index = overlay_slice_index(truth | pred)
        if index is not None:  # a volume: the slice with the most foreground
            pixels, truth, pred, uncertainty = pixels[..., index], truth[..., index], pred[..., index], uncertainty[..., index]
        cases.append(DrawnCase(row["case"], display_rgb(pixels).astype(np.float32) / 255.0, truth.T, pred.T,
                               np.asarray(uncertainty, np.float32).T, float(row["dice"]), float(row[score]), rank,
                               flagged(float(row[score]))))
    return plot_least_trusted(cases, score, coverage, path)


def _write_review_flag(report: EvaluationReport, ok_rows: list[dict[str, Any]], settings, score: str, coverage: float,
                       predictor, ckpt_path: Path, datalist, split: str) -> Path:
    """Choose the review threshold on the evaluated cases and write ``quality.json`` beside the checkpoint."""
    from ..quality.review import ReviewFlag, checkpoint_identity, choose_threshold, quality_path, score_options

    name = report.quality["best"] if score == "auto" else score
    threshold, reached = choose_threshold([float(r[name]) for r in ok_rows], name, coverage)
    flag = ReviewFlag(name, threshold, float(coverage), reached, settings, score_options(predictor),
                      {"datalist": str(datalist), "split": split, "n_cases": len(ok_rows),
                       "cases": [r["case"] for r in ok_rows], "score_chosen_by": "lowest AURC" if score == "auto" else "user"},
                      checkpoint_identity(ckpt_path), {"risk_coverage": report.quality["scores"]})
    path = flag.save(quality_path(ckpt_path))
    report.quality_lines.append(f"review threshold written to {path}: {flag.describe()}")
    return path
