"""Export the bare backbone of a checkpoint to TorchScript and ONNX, and check both against PyTorch.

The exported model is the plain segmentation network (``build_network`` from the checkpoint's
record, weights from its ``model`` key): image ``(B, in_channels, *img_size)`` in the training
normalised range → logits ``(B, 1, *img_size)``. No MaskSup parts (masker, second branch, loss):
those exist only during training. Preprocessing is not inside the exported model; apply the
training preprocessing (``medseg_masksup.data.preprocessing.image_transforms``) before calling it.

TorchScript goes through MONAI's ``ckpt_export`` with ``bundles/masksup/inference.json`` (whose
``network_def`` rebuilds the network from the checkpoint), so the file carries the bundle metadata
and config; scripting is tried first and tracing used for networks that cannot be scripted
(SwinUNETR). ONNX uses ``torch.onnx.export`` (TorchScript-based exporter, ``dynamo=False``, since the
dynamo exporter needs ``onnxscript``) with a dynamic batch axis.

Parity: on random inputs in the normalised range, exported logits must equal PyTorch's within
``|a - b| <= atol + rtol * |b|``: TorchScript ``atol = rtol = 1e-5``, ONNX Runtime ``atol = rtol = 1e-4``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..bundle_files import bundle_file
from ..errors import ExportParityError, UserError

TOLERANCES = {"torchscript": {"atol": 1e-5, "rtol": 1e-5}, "onnx": {"atol": 1e-4, "rtol": 1e-4}}
FORMATS = ("torchscript", "onnx")


def example_input(record, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random images in the record's normalised range, shaped as the network sees them."""
    lo, hi = (float(v) for v in record.normalised_range)
    gen = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand((batch, int(record.in_channels), *record.img_size), generator=gen)


def export_torchscript(ckpt: str | Path, filepath: str | Path, config_file: str | Path | None = None,
                       meta_file: str | Path | None = None) -> Path:
    """TorchScript of the backbone through ``monai.bundle.ckpt_export`` (script, else trace); atomic."""
    from monai.bundle.scripts import ckpt_export

    from ..checkpoint import read_checkpoint
    from ..io.atomic import atomic_target

    _, record, ckpt_path = read_checkpoint(ckpt)
    config_file = config_file or bundle_file("inference.json")
    meta_file = meta_file or bundle_file("metadata.json")
    if not Path(config_file).is_file():
        raise UserError(f"bundle config not found: {config_file} (needed by monai.bundle ckpt_export)")
    shape = [1, int(record.in_channels), *record.img_size]
    meta = {  # the metadata stored in the .ts file describes this checkpoint, not the bundle defaults
        "_meta_#network_data_format#inputs#image#spatial_shape": list(record.img_size),
        "_meta_#network_data_format#inputs#image#num_channels": int(record.in_channels),
        "_meta_#network_data_format#outputs#pred#spatial_shape": list(record.img_size),
    }
    args = dict(net_id="network_def", ckpt_file=str(ckpt_path), meta_file=str(meta_file), config_file=str(config_file),
                key_in_ckpt="model", ckpt=str(ckpt_path), **meta)
    bundle_logger = logging.getLogger("monai.bundle.scripts")
    level = bundle_logger.level
    bundle_logger.setLevel(logging.WARNING)  # its log names the temporary file
    try:
        with atomic_target(filepath) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ckpt_export(filepath=str(tmp), **args)
            except Exception:  # noqa: BLE001 - not scriptable (e.g. SwinUNETR): trace at the training input size
                ckpt_export(filepath=str(tmp), use_trace=True, input_shape=shape, **args)
    finally:
        bundle_logger.setLevel(level)
    return Path(filepath)


def export_onnx(network: nn.Module, record, filepath: str | Path, opset: int = 17) -> Path:
    """ONNX of the backbone: input ``image`` ``(batch, C, *img_size)``, output ``logits``; atomic."""
    from ..io.atomic import atomic_target

    network = network.cpu().eval()
    with atomic_target(filepath) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network, (example_input(record, 1),), str(tmp), dynamo=False, opset_version=opset,
            input_names=["image"], output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    return Path(filepath)


def onnx_runner(path: str | Path) -> Callable[[torch.Tensor], np.ndarray]:
    """A function running the ONNX file with ONNX Runtime on CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"image": x.numpy()})[0]


def compare(reference: np.ndarray, candidate: np.ndarray, atol: float, rtol: float) -> dict[str, Any]:
    """Max absolute difference and whether ``|cand - ref| <= atol + rtol |ref|`` holds everywhere."""
    diff = np.abs(np.asarray(candidate, dtype=np.float64) - np.asarray(reference, dtype=np.float64))
    return {"max_abs_diff": float(diff.max()), "atol": atol, "rtol": rtol,
            "ok": bool(np.all(diff <= atol + rtol * np.abs(reference)))}


def export_checkpoint(ckpt: str | Path, output_dir: str | Path, formats: Sequence[str] = FORMATS, opset: int = 17,
                      verbose: bool = True) -> dict[str, Any]:
    """Export ``ckpt`` to ``<output_dir>/model.ts`` / ``model.onnx``, check parity, write ``export.json``.

    Raises :class:`UserError` if an export differs from PyTorch beyond its tolerance.
    """
    from ..checkpoint import load_network, resolve_checkpoint
    from ..io.atomic import write_json

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    network, record = load_network(ckpt, "cpu")
    ckpt_path = resolve_checkpoint(ckpt)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = example_input(record, batch=2)
    with torch.inference_mode():
        reference = network(x).numpy()
    report: dict[str, Any] = {"checkpoint": str(ckpt_path), "network": record.network, "network_size": record.network_size,
                              "input_shape": ["batch", int(record.in_channels), *record.img_size],
                              "intensity_range": record.intensity_range, "normalised_range": record.normalised_range,
                              "prob_threshold": record.prob_threshold, "exports": {}}
    if "torchscript" in formats:
        path = export_torchscript(ckpt_path, out / "model.ts")
        scripted = torch.jit.load(str(path), map_location="cpu").eval()
        with torch.inference_mode():
            result = scripted(x).numpy()
        report["exports"]["torchscript"] = {"path": str(path), **compare(reference, result, **TOLERANCES["torchscript"])}
    if "onnx" in formats:
        path = export_onnx(network, record, out / "model.onnx", opset)
        report["exports"]["onnx"] = {"path": str(path), "opset": opset,
                                     **compare(reference, onnx_runner(path)(x), **TOLERANCES["onnx"])}
    write_json(out / "export.json", report)
    if verbose:
        for name, r in report["exports"].items():
            print(f"{name}: {r['path']}  max |Δlogit| vs PyTorch {r['max_abs_diff']:.2e} "
                  f"(tolerance {r['atol']:g} + {r['rtol']:g}·|ref|) {'OK' if r['ok'] else 'FAILED'}", flush=True)
    failed = [name for name, r in report["exports"].items() if not r["ok"]]
    if failed:
        raise ExportParityError(f"{', '.join(failed)} export of {ckpt_path} differs from PyTorch beyond tolerance; see {out / 'export.json'}")
    return report
