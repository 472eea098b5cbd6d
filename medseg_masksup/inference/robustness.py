"""Robustness to occlusion: Dice and IoU versus the share of the input hidden (0–75 %).

The paper's claim is that MaskSup keeps segmenting when large parts of the input are hidden. For
any checkpoint (baseline or MaskSup), each labelled image is prepared exactly as in training
(:func:`medseg_masksup.data.preprocessing.training_preprocessing` from the checkpoint's record: image and
label at ``img_size``, as training validation scores them), occluded with the training mask
generator (:class:`medseg_masksup.method.masking.MaskGenerator`, holes set to 0 = mid-grey as in training),
and segmented by the bare backbone. The mask for case ``i`` at (kind, ratio, seed) comes from its
own generator seeded with ``seed * 1_000_003 + i``, so it does not depend on the batch size or on
the checkpoint: a baseline and a MaskSup model (same ``img_size``) are scored on identical inputs.
Metrics are computed against the unoccluded label (whole image), so the curve shows how much of
the object the model still recovers.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError, error_chain
from ..method.masking import MASK_KINDS, MaskGenerator
from ..tracking.server_probe import require_reachable
from .options import InferenceOptions

DEFAULT_RATIOS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75)
COLUMNS = ("label", "kind", "ratio", "hidden_fraction", "n_cases", "n_seeds", "dice_mean", "dice_std", "iou_mean", "iou_std")


def occlusion_mask(kind: str, ratio: float, seed: int, index: int, shape: Sequence[int]) -> torch.Tensor:
    """The ``(1, 1, *spatial)`` 0/1 occlusion of case ``index`` (independent of batching and model)."""
    if ratio <= 0:
        return torch.zeros((1, 1, *shape[-2:]))
    generator = MaskGenerator(kind, float(ratio), seed=int(seed) * 1_000_003 + int(index))
    return generator((1, 1, *shape[-2:]))


def _check(kinds: Sequence[str], ratios: Sequence[float], seeds: Sequence[int]) -> None:
    for kind in kinds:
        if kind not in MASK_KINDS:
            raise UserError(f"unknown mask kind {kind!r}; choose from {', '.join(MASK_KINDS)}")
    for ratio in ratios:
        if not 0.0 <= float(ratio) < 1.0:
            raise UserError(f"masked fraction must be in [0, 1), got {ratio}")
    if not kinds or not ratios or not seeds:
        raise UserError("need at least one mask kind, one ratio and one seed")


def _scores(pred: torch.Tensor, label: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-case Dice and IoU (both empty → 1), as training validation with MONAI metrics."""
    from monai.metrics import DiceMetric, MeanIoU

    dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)(pred, label)[:, 0]
    iou = MeanIoU(include_background=True, reduction="none", ignore_empty=False)(pred, label)[:, 0]
    return dice.cpu().numpy(), iou.cpu().numpy()


@torch.inference_mode()
def robustness_curve(
    network: torch.nn.Module,
    record,
    cases: list[dict[str, torch.Tensor]],
    kinds: Sequence[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seeds: Sequence[int] = (0,),
    threshold: float | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    label: str = "",
    progress: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Curve rows (per kind × ratio, over cases and seeds) and per-case rows, for preprocessed ``cases``."""
    from tqdm.auto import tqdm

    from ..data.preprocessing import make_inferer

    _check(kinds, ratios, seeds)
    network = network.to(device).eval()
    inferer = make_inferer(record, sw_batch_size=batch_size)
    thr = float(threshold if threshold is not None else record.prob_threshold)
    plain = lambda t: (t.as_tensor() if hasattr(t, "as_tensor") else torch.as_tensor(t)).float()  # noqa: E731
    images = [plain(c["image"]) for c in cases]
    labels = [plain(c["label"]) for c in cases]
    if len({tuple(x.shape) for x in images}) > 1:  # native-size images (patch mode): one case at a time
        batch_size = 1
    curve, per_case = [], []
    steps = [(k, r, s) for k in kinds for r in ratios for s in seeds]
    scores: dict[tuple[str, float], list[tuple[np.ndarray, np.ndarray, float]]] = {}
    for kind, ratio, seed in tqdm(steps, desc="robustness", disable=not progress):
        masks = [occlusion_mask(kind, ratio, seed, i, x.shape) for i, x in enumerate(images)]
        dice_all, iou_all = [], []
        for start in range(0, len(cases), batch_size):
            x = torch.stack(images[start : start + batch_size]).to(device)
            m = torch.cat(masks[start : start + batch_size]).to(device)
            pred = (torch.sigmoid(inferer(x * (1 - m), network)) >= thr).float()
            dice, iou = _scores(pred, torch.stack(labels[start : start + batch_size]).to(device))
            dice_all.append(dice)
            iou_all.append(iou)
        dice_v, iou_v = np.concatenate(dice_all), np.concatenate(iou_all)
        hidden = float(np.mean([float(m.mean()) for m in masks]))
        scores.setdefault((kind, float(ratio)), []).append((dice_v, iou_v, hidden))
        per_case += [{"label": label, "kind": kind, "ratio": float(ratio), "seed": int(seed), "case": i,
                      "dice": float(d), "iou": float(u)} for i, (d, u) in enumerate(zip(dice_v, iou_v))]
    for (kind, ratio), runs in scores.items():
        dice = np.concatenate([r[0] for r in runs])
        iou = np.concatenate([r[1] for r in runs])
        curve.append({
            "label": label, "kind": kind, "ratio": ratio, "hidden_fraction": float(np.mean([r[2] for r in runs])),
            "n_cases": len(cases), "n_seeds": len(runs), "dice_mean": float(np.nanmean(dice)), "dice_std": float(np.nanstd(dice)),
            "iou_mean": float(np.nanmean(iou)), "iou_std": float(np.nanstd(iou)),
        })
    return curve, per_case


def read_curve(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``robustness.csv`` (numbers parsed)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"robustness table not found: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not set(COLUMNS) <= set(rows[0]):
        raise UserError(f"{path}: not a robustness table (expected columns {', '.join(COLUMNS)})")
    for row in rows:
        for key in COLUMNS[2:]:
            row[key] = float(row[key])
    return rows


def plot_curves(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Dice and IoU versus % of the input hidden, one line per (label, kind), ±1 std shaded."""
    from ..io import figure_style as style

    fig, axes = style.pyplot().subplots(1, 2, figsize=(10, 4), sharex=True)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        label, kind = str(row["label"]), str(row["kind"])
        groups.setdefault(f"{label} · {kind}" if label else kind, []).append(row)
    colours = style.series_colours(groups)
    for name, group in groups.items():
        group = sorted(group, key=lambda r: float(r["ratio"]))
        x = np.array([100 * float(r["ratio"]) for r in group])
        for ax, metric in zip(axes, ("dice", "iou")):
            mean = np.array([float(r[f"{metric}_mean"]) for r in group])
            std = np.array([float(r[f"{metric}_std"]) for r in group])
            ax.plot(x, mean, marker="o", label=name, color=colours[name])
            ax.fill_between(x, mean - std, mean + std, alpha=style.BAND_ALPHA, color=colours[name])
    for ax, name in zip(axes, ("Dice", "IoU")):
        ax.set_xlabel("input hidden (%)")
        ax.set_ylabel(name)
        ax.set_ylim(0, 1)
        ax.grid(alpha=style.GRID_ALPHA)
        ax.legend(fontsize=style.FONT_SMALL)
    fig.suptitle(title or "Segmentation under occlusion", fontsize=style.FONT_TITLE)
    fig.tight_layout()
    return style.save_figure(fig, path)


@dataclass
class RobustnessReport:
    curve: list[dict[str, Any]] = field(default_factory=list)
    table: Path | None = None
    plot: Path | None = None
    mlflow_run_id: str = ""

    def lines(self) -> list[str]:
        out = [f"{'kind':<9} {'hidden':>7} {'Dice':>15} {'IoU':>15}"]
        for r in self.curve:
            out.append(f"{r['kind']:<9} {100 * r['ratio']:6.0f}% {r['dice_mean']:7.4f} ± {r['dice_std']:.3f} "
                       f"{r['iou_mean']:7.4f} ± {r['iou_std']:.3f}")
        out.append(f"table: {self.table}  plot: {self.plot}")
        return out


def run_robustness(
    ckpt: str | Path,
    datalist: str | Path,
    output_dir: str | Path,
    kinds: Sequence[str] | str | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seeds: Sequence[int] = (0,),
    split: str = "auto",
    label: str | None = None,
    compare: Sequence[str | Path] = (),
    options: InferenceOptions | None = None,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    verbose: bool = True,
    tags: dict[str, str] | None = None,
    **option_overrides: Any,
) -> RobustnessReport:
    """Robustness curve of ``ckpt`` on ``datalist``: ``robustness.csv``, ``robustness_per_case.csv``,
    ``robustness.png`` (with the curves of ``compare`` tables drawn alongside) and an MLflow run.

    ``kinds=None`` uses the checkpoint's training mask kind; ``"all"`` every kind. Of ``options``
    (:class:`~medseg_masksup.inference.options.InferenceOptions`, with ``option_overrides`` applied)
    the threshold, batch size, device and progress bar are used: the curve measures the bare network.
    """
    from monai.data import Dataset

    from ..data.datalist import load_items
    from .evaluation import default_tracking_uri, log_run, open_checkpoint_for_scoring
    from ..checkpoint import training_run_id
    from ..data.preprocessing import training_preprocessing

    require_reachable(tracking_uri)  # an http(s) server that does not answer: one line now, not after the work
    options, predictor, ckpt_path = open_checkpoint_for_scoring(ckpt, datalist, options, **option_overrides)
    network, record, device = predictor.network, predictor.record, predictor.device  # the bare (first) network
    if kinds is None or kinds == "":
        kinds = [record.mask_kind if record.mask_kind in MASK_KINDS else "freeform"]
    elif isinstance(kinds, str):
        kinds = list(MASK_KINDS) if kinds == "all" else [k.strip() for k in kinds.split(",")]
    ratios = [float(r) for r in ratios]
    seeds = [int(s) for s in seeds]
    _check(kinds, ratios, seeds)
    compare_rows = [row for table in compare for row in read_curve(table)]
    items, chosen = load_items(datalist, split, record.val_fold)
    transform = training_preprocessing(record)
    try:
        cases = [dict(c) for c in Dataset(items, transform=transform)]
    except Exception as err:  # noqa: BLE001 - MONAI wraps the reader error (its cause names the file)
        cause = list(error_chain(err))[-1]
        raise UserError(f"datalist {datalist}: an item could not be loaded ({str(cause).strip().splitlines()[-1]})") from None
    label = label or f"{record.method}/{record.network}"
    curve, per_case = robustness_curve(network, record, cases, kinds, ratios, seeds, options.threshold, options.batch_size, device, label,
                                       options.progress)
    out_root = Path(output_dir)
    out_root.mkdir(parents=True, exist_ok=True)
    from ..io.atomic import write_csv

    report = RobustnessReport(curve=curve)
    report.table = write_csv(out_root / "robustness.csv", curve, COLUMNS)
    per_case_csv = write_csv(out_root / "robustness_per_case.csv", per_case, ("label", "kind", "ratio", "seed", "case", "dice", "iou"))
    report.plot = plot_curves(curve + compare_rows, out_root / "robustness.png",
                              title=f"Occlusion robustness on {record.dataset or Path(datalist).parent.name} ({chosen})")
    uri = default_tracking_uri(out_root, tracking_uri)
    metrics = [(f"robust_{m}_{r['kind']}", r[f"{m}_mean"], int(round(100 * r["ratio"]))) for r in curve for m in ("dice", "iou")]
    auc = {}
    for kind in kinds:  # mean over the ratio grid: one number per kind to compare runs
        rows = [r for r in curve if r["kind"] == kind]
        auc[kind] = float(np.mean([r["dice_mean"] for r in rows]))
        metrics.append((f"robust_dice_avg_{kind}", auc[kind], 0))
    _, report.mlflow_run_id = log_run(
        uri, record, training_run_id(ckpt_path, record), run_name or f"robustness-{record.method}",
        params={"checkpoint": ckpt_path, "datalist": datalist, "split": chosen, "kinds": ",".join(kinds),
                "ratios": ",".join(f"{r:g}" for r in ratios), "seeds": ",".join(map(str, seeds)), "n_cases": len(cases),
                "threshold": options.threshold if options.threshold is not None else record.prob_threshold},
        metrics=metrics, artifacts=[report.table, per_case_csv, report.plot], tags={"kind": "robustness", **(tags or {})},
    )
    if verbose:
        for line in report.lines():
            print(line, flush=True)
        print(f"MLflow run {report.mlflow_run_id} in {uri}", flush=True)
    return report
