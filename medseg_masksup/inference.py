"""Segment new images with a trained checkpoint.

The checkpoint carries the :class:`TrainingRecord` of its training run; the network and the
preprocessing are rebuilt from it (:func:`load_checkpoint`, :func:`preprocessing`, which calls the
same :func:`medseg_masksup.preprocessing.image_transforms` as training), so inference cannot use
another image size, normalisation or network than the one the weights were trained with.

One case (:meth:`Predictor.segment`): the image (``(C, *spatial)``, volumes slice by slice along the
last axis) → optional intensity mapping for inputs outside the training range → training
preprocessing → backbone (optionally averaged over flips) → sigmoid → back to the input grid →
threshold → optional largest-component / hole filling (MONAI transforms) → mask on the input grid.

Two ways to handle the input size (``mode``):

- ``"resize"`` (default): the whole image is resized to the training ``img_size``, exactly as in
  training, and the probability map is resized back (bilinear) before thresholding. Right for
  models trained on whole images resized to ``img_size`` — the case for every dataset this project
  trains on — because objects then appear at the scale the model learned.
- ``"sliding"``: no resize; ``img_size`` windows slide over the image at native resolution (25 %
  overlap, Gaussian blending). Only right when training images were already at the native pixel
  size of the new images (e.g. tiles of large slides); on whole-image-trained models objects
  would appear larger than the model has ever seen.

:func:`run_folder` applies this to a file or folder and writes masks, overlays and a summary.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .io.errors import InputError, NothingProcessedError, OutputError, UserError
from .networks import build_network
from .preprocessing import image_transforms
from .record import TrainingRecord

logger = logging.getLogger(__name__)

MODES = ("resize", "sliding")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
REQUIRED_RECORD_KEYS = (
    "network", "network_size", "spatial_dims", "in_channels", "out_channels", "img_size",
    "intensity_range", "normalised_range", "prob_threshold",
)


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


# ----------------------------------------------------------------------------- checkpoint


def resolve_checkpoint(path: str | Path) -> Path:
    """The checkpoint file: ``path`` itself, or ``<path>/model.pt`` for a training run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def _unreadable(path: Path, message: str) -> str:
    """This module's wording for a :func:`medseg_masksup.checkpoint.load_checkpoint` refusal (one line)."""
    if message == f"checkpoint {path} is empty (0 bytes)":
        return f"{path}: not a readable PyTorch checkpoint (the file is empty, 0 bytes)"
    prefix = f"cannot read checkpoint {path}: "
    if not message.startswith(prefix):
        return message  # already names the file
    reason = _ANSI.sub("", message[len(prefix):]).strip()
    if reason.startswith("Weights only load failed"):
        reason = ("it holds pickled Python objects, not only weights (e.g. a whole model object); "
                  "refused because loading it could run code")
    elif len(reason) > 160 and ". " in reason:  # torch appends paragraphs of advice
        reason = reason.split(". ", 1)[0] + "."
    return f"{path}: not a readable PyTorch checkpoint ({reason})"


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], TrainingRecord, Path]:
    """State dict of the bare backbone, its training record, and the resolved file (``weights_only``).

    The file is read by :func:`medseg_masksup.checkpoint.load_checkpoint` (missing, empty, corrupt,
    truncated and pickled-object files refused); the checks here are inference's own.
    """
    from . import checkpoint as shared

    path = resolve_checkpoint(path)
    try:
        ckpt = shared.load_checkpoint(path, required=())
    except shared.CheckpointError as err:
        raise CheckpointError(_unreadable(path, str(err))) from None
    if "model" not in ckpt:
        raise CheckpointError(
            f"{path}: no 'model' weights (found {sorted(map(str, ckpt))[:8]}); "
            "expected a checkpoint written by medseg-masksup training"
        )
    state = ckpt.get("training_record")
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: no 'training_record'; the preprocessing the weights were trained with is unknown, "
            "so the checkpoint cannot be used (write checkpoints with medseg-masksup training)"
        )
    missing = [k for k in REQUIRED_RECORD_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: training record lacks {', '.join(missing)}; cannot rebuild the preprocessing")
    return ckpt["model"], TrainingRecord.from_dict(state), path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainingRecord]:
    """The bare backbone (eval mode, weights loaded strictly) and the record it was trained with."""
    weights, record, path = read_checkpoint(path)
    if int(record.spatial_dims) != 2:
        raise CheckpointError(f"{path}: a {record.spatial_dims}D model; inference here runs 2D models (volumes slice by slice)")
    if int(record.out_channels) != 1:
        raise CheckpointError(f"{path}: {record.out_channels} output channels; binary segmentation needs 1")
    try:
        network = build_network(record.network, record.spatial_dims, record.in_channels, record.out_channels, record.network_size)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit a {record.network}/{record.network_size} network ({first})") from None
    return network.to(device).eval(), record


def network_from_checkpoint(path: str | Path) -> nn.Module:
    """The backbone the checkpoint's record describes, weights loaded (the bundles' ``network_def``)."""
    return load_checkpoint(path)[0]


def training_run_id(ckpt_path: str | Path, record: TrainingRecord) -> str:
    """MLflow run id of the training run: from the record, else from the run folder's files.

    Training saves the best checkpoint before the run ends, so the checkpoint's own record may not
    know the run id yet; ``training_record.json`` / ``summary.json`` beside it do.
    """
    if record.mlflow_run_id:
        return record.mlflow_run_id
    folder = Path(ckpt_path).parent if Path(ckpt_path).is_file() else Path(ckpt_path)
    for name in ("training_record.json", "summary.json"):
        try:
            value = json.loads((folder / name).read_text()).get("mlflow_run_id")
        except (OSError, ValueError, AttributeError):
            continue
        if value:
            return str(value)
    return ""


# ----------------------------------------------------------------------------- one case


@dataclass
class InferenceOptions:
    """How to turn network outputs into masks. ``threshold=None`` uses the record's ``prob_threshold``."""

    tta: bool = False
    threshold: float | None = None
    keep_largest: bool = False
    fill_holes: bool = False
    mode: str = "resize"
    overlap: float = 0.25
    batch_size: int = 8
    intensity_window: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.threshold is not None and not 0.0 < float(self.threshold) < 1.0:
            raise UserError(f"threshold must lie strictly between 0 and 1, got {self.threshold}")
        if self.intensity_window is not None:
            window = [float(v) for v in self.intensity_window]
            if len(window) != 2 or not window[0] < window[1]:
                raise UserError(f"intensity_window must be two numbers low < high, got {list(self.intensity_window)}")
            self.intensity_window = window
        if not 0.0 <= self.overlap < 1.0:
            raise UserError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {self.batch_size}")


def preprocessing(record: TrainingRecord, mode: str = "resize"):
    """Training's image preprocessing from the record; ``sliding`` drops only the resize."""
    from monai.transforms import Compose, Resized

    transforms = image_transforms(record, keys=("image",))
    if mode == "sliding":
        transforms = [t for t in transforms if not isinstance(t, Resized)]
    return Compose(transforms)


def map_intensity(image: np.ndarray, record: TrainingRecord, window: Sequence[float] | None = None):
    """Bring an image's values onto the training intensity range, as training did.

    ``window=(low, high)`` maps that range linearly onto ``record.intensity_range`` (values outside
    are clipped later by the training preprocessing). Without a window, values are first scaled from the
    recorded ``bit_depth`` onto the 8-bit scale, exactly as training scaled them (nothing changes for
    8-bit models); an image still outside the training range afterwards (deeper than the training data,
    CT, float) has its own min..max mapped onto the range. Returns the image and the source range used
    (``None`` when nothing was changed).
    """
    from .record import bit_scale

    a_min, a_max = (float(v) for v in record.intensity_range)
    if window is None:
        depth = int(getattr(record, "bit_depth", 8))
        scaled = image * np.float32(bit_scale(depth)) if depth != 8 else image
        lo, hi = float(np.min(image)), float(np.max(image))
        if float(np.min(scaled)) >= a_min and float(np.max(scaled)) <= a_max:
            return (scaled.astype(np.float32), [0.0, float(2**depth - 1)]) if depth != 8 else (image, None)
    else:
        lo, hi = (float(v) for v in window)
    scale = (a_max - a_min) / (hi - lo) if hi > lo else 0.0
    return ((image - lo) * scale + a_min).astype(np.float32), [lo, hi]


class Predictor:
    """Probabilities and masks for images of any size, from a backbone and its training record."""

    def __init__(self, network: nn.Module, record: TrainingRecord, options: InferenceOptions | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.network = network.to(device).eval()
        self.record = record
        self.options = options or InferenceOptions()
        self.device = torch.device(device)
        self.transform = preprocessing(record, self.options.mode)
        self.threshold = float(self.options.threshold if self.options.threshold is not None else record.prob_threshold)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.options.mode == "resize":
            return self.network(x)
        from monai.inferers import sliding_window_inference

        return sliding_window_inference(
            x, roi_size=list(self.record.img_size), sw_batch_size=self.options.batch_size, predictor=self.network,
            overlap=self.options.overlap, mode="gaussian",
        )

    def _probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the backbone output, averaged over the flips of both axes when ``tta``."""
        flips: list[tuple[int, ...]] = [()] + ([(2,), (3,), (2, 3)] if self.options.tta else [])
        total = torch.zeros((x.shape[0], 1, *x.shape[2:]), device=x.device)
        for dims in flips:
            xi = torch.flip(x, dims) if dims else x
            prob = torch.sigmoid(self._logits(xi))
            total += torch.flip(prob, dims) if dims else prob
        return total / len(flips)

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Foreground probability ``(*spatial)`` for an image ``(C, *spatial)`` (3D: slice by slice)."""
        image = np.nan_to_num(np.asarray(image, dtype=np.float32))
        planes = [image] if image.ndim == 3 else [image[..., k] for k in range(image.shape[-1])]
        native = planes[0].shape[1:]
        out = []
        for start in range(0, len(planes), self.options.batch_size):
            batch = [self.transform({"image": torch.from_numpy(p)})["image"] for p in planes[start : start + self.options.batch_size]]
            x = torch.stack([b.as_tensor() if hasattr(b, "as_tensor") else torch.as_tensor(b) for b in batch])
            x = x.to(self.device, torch.float32)  # plain tensors: no MONAI metadata tracking in the forward pass
            prob = self._probabilities(x)
            if tuple(prob.shape[2:]) != tuple(native):
                prob = torch.nn.functional.interpolate(prob, size=native, mode="bilinear", align_corners=False)
            out.append(prob[:, 0].float().cpu().numpy())
        probs = np.concatenate(out, axis=0)
        return probs[0] if image.ndim == 3 else np.moveaxis(probs, 0, -1)

    def postprocess(self, mask: np.ndarray) -> np.ndarray:
        """Largest connected component and/or hole filling (MONAI, full connectivity), if enabled."""
        if not (self.options.keep_largest or self.options.fill_holes):
            return mask
        from monai.transforms import FillHoles, KeepLargestConnectedComponent

        tensor = torch.from_numpy(mask.astype(np.uint8))[None]
        if self.options.keep_largest:
            tensor = KeepLargestConnectedComponent(applied_labels=[1], is_onehot=False)(tensor)
        if self.options.fill_holes:
            tensor = FillHoles(applied_labels=[1])(tensor)
        return np.asarray(tensor[0]).astype(bool)

    def segment(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float] | None]:
        """Mask (bool, ``(*spatial)``), probability map and the intensity range mapped from (or ``None``)."""
        image, mapped_from = map_intensity(np.asarray(image, dtype=np.float32), self.record, self.options.intensity_window)
        prob = self.probabilities(image)
        mask = self.postprocess(prob >= self.threshold)  # >=, as MONAI's AsDiscrete in training validation
        return mask, prob, mapped_from


# ----------------------------------------------------------------------------- a file or folder


@dataclass
class InferenceReport:
    """What :func:`run_folder` did: one row per case (``status`` ok / error / skipped)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary_csv: Path | None = None
    summary_json: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    def lines(self) -> list[str]:
        out = [f"{r['status']}: {r['message']}" for r in self.rows if r["status"] != "ok"]
        out.append(
            f"segmented {self.count('ok')} of {len(self.rows)} inputs ({self.count('error')} failed, "
            f"{self.count('skipped')} skipped); summary: {self.summary_csv}"
        )
        return out


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_output_dir(input_path: Path, output_dir: Path) -> None:
    """Refuse an output folder that is the input folder (or the folder holding the input file)."""
    in_dir = input_path.resolve() if input_path.is_dir() else input_path.resolve().parent
    if output_dir.resolve() == in_dir:
        raise OutputError(
            f"output folder {output_dir} is the input folder; choose another --output_dir so inputs are never overwritten"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} exists and is not a folder")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def run_folder(
    input: str | Path,
    output_dir: str | Path,
    ckpt: str | Path,
    tta: bool = False,
    threshold: float | None = None,
    keep_largest: bool = False,
    fill_holes: bool = False,
    mode: str = "resize",
    save_prob: bool = False,
    overlay: bool = True,
    intensity_window: Sequence[float] | None = None,
    batch_size: int = 8,
    device: str | None = None,
    progress: bool = True,
    verbose: bool = True,
    raise_if_none: bool = True,
    overwrite: bool = False,
) -> InferenceReport:
    """Segment every readable image under ``input`` (file or folder) and write the results.

    Per case, under ``output_dir`` (mirroring sub-folders): ``<name>_mask.<png|nii.gz|nrrd|mha>``,
    ``<name>_overlay.png``, optionally ``<name>_prob.*``; for the run ``summary.csv`` / ``summary.json``.
    A file that cannot be read is reported (path and reason) and the others are still written.
    An ``output_dir`` holding results of an earlier run is refused unless ``overwrite`` (then they are
    removed first); one that is not writable is refused before any work.
    Raises :class:`UserError` for unusable settings, and — with ``raise_if_none`` — when no case
    could be segmented.
    """
    from tqdm.auto import tqdm

    from .io import discover_cases, read_case
    from .io.output_folder import claim_output_dir, remove_earlier_results
    from .io.overlay import write_overlay
    from .io.summary import mask_statistics, write_summary
    from .io.write_mask import output_suffix, write_mask, write_probability

    options = InferenceOptions(tta=bool(tta), threshold=threshold, keep_largest=bool(keep_largest), fill_holes=bool(fill_holes),
                               mode=mode, batch_size=int(batch_size), intensity_window=intensity_window)
    if not str(input or ""):
        raise UserError("no input given: pass --input <file or folder>")
    if not str(ckpt or ""):
        raise UserError("no checkpoint given: pass --ckpt <model.pt or training run folder>")
    if not str(output_dir or ""):
        raise UserError("no output folder given: pass --output_dir <folder>")
    input_path, out_root = Path(input), Path(output_dir)
    if not input_path.exists():
        raise InputError(f"input not found: {input_path}")
    check_output_dir(input_path, out_root)
    earlier = claim_output_dir(out_root, input_path, bool(overwrite))
    device = device or default_device()
    network, record = load_checkpoint(ckpt, device)
    predictor = Predictor(network, record, options, device)
    sources = discover_cases(input_path, exclude=(out_root,))
    if not sources:
        raise InputError(f"{input_path}: no files found")
    inputs = {f.resolve() for s in sources for f in [s.path, *s.files] if f.is_file()}
    remove_earlier_results([p for p in earlier if p.resolve() not in inputs])
    out_root.mkdir(parents=True, exist_ok=True)

    def target(path: Path) -> Path:
        if path.resolve() in inputs:
            raise OutputError(f"{path}: output would overwrite an input file; choose another --output_dir")
        return path

    report = InferenceReport()
    for source in tqdm(sources, desc="infer", unit="case", disable=not progress):
        row: dict[str, Any] = {"case": str(source.rel_dir / source.stem), "source": str(source.path), "status": "ok", "message": ""}
        started = time.perf_counter()
        if source.kind is None:
            row.update(status="skipped", message=f"{source.path}: not a supported image format")
            report.rows.append(row)
            continue
        try:
            case = read_case(source.path, source.kind, source.files)
            mask, prob, mapped_from = predictor.segment(case.image)
            base = out_root / source.rel_dir / source.stem
            suffix = output_suffix(case)
            row["mask"] = _relative(write_mask(case, mask, target(base.with_name(base.name + "_mask" + suffix))), out_root)
            if overlay:
                row["overlay"] = _relative(write_overlay(case, mask, target(base.with_name(base.name + "_overlay.png"))), out_root)
            if save_prob:
                row["probability"] = _relative(write_probability(case, prob, target(base.with_name(base.name + "_prob" + suffix))), out_root)
            row.update(shape=list(case.spatial_shape), spacing_mm=list(case.spacing) if case.spacing else None,
                       intensity_mapped_from=mapped_from, **mask_statistics(mask, case.spacing))
        except UserError as err:
            row.update(status="error", message=str(err))
        except Exception as err:  # noqa: BLE001 - one bad case must not stop the others; reported with its path
            row.update(status="error", message=f"{source.path}: {type(err).__name__}: {err}")
        row["seconds"] = round(time.perf_counter() - started, 3)
        report.rows.append(row)
    run_info = {
        "checkpoint": str(resolve_checkpoint(ckpt)),
        "input": str(input_path),
        "options": {"tta": options.tta, "threshold": predictor.threshold, "keep_largest": options.keep_largest,
                    "fill_holes": options.fill_holes, "mode": options.mode, "intensity_window": options.intensity_window,
                    "save_prob": bool(save_prob), "overlay": bool(overlay)},
        "training_record": record.state_dict(),
    }
    report.summary_csv, report.summary_json = write_summary(report.rows, out_root, run_info)
    if verbose:
        for line in report.lines():
            print(line, flush=True)
    if raise_if_none and report.count("ok") == 0:
        failures = [r["message"] for r in report.rows if r["status"] != "ok"]
        raise NothingProcessedError(f"nothing could be segmented in {input_path} ({len(failures)} inputs: {failures[0]})")
    return report
