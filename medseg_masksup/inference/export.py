"""Export the bare backbone of a checkpoint to TorchScript and ONNX, and check both against PyTorch.

The exported model is the plain segmentation network (``build_network`` from the checkpoint's
record, weights from its ``model`` key): image ``(B, in_channels, *img_size)`` in the training
normalised range → logits ``(B, 1, *img_size)``. No MaskSup parts (masker, second branch, loss):
those exist only during training. Preprocessing is not inside the exported model: ``export.json`` (and the
TorchScript file's metadata, key ``preprocessing``) spell out everything a user of the ONNX/TorchScript file
must do around it (:func:`preprocessing_spec`: channels, bit depth, spatial mode, size and scale, intensity
mapping, sliding window, sigmoid and threshold), the same steps ``medseg-masksup infer`` takes.

TorchScript goes through MONAI's ``ckpt_export`` with ``bundles/masksup/inference.json`` (whose
``network_def`` rebuilds the network from the checkpoint), so the file carries the bundle metadata
and config; scripting is tried first and tracing used for networks that cannot be scripted
(SwinUNETR). ONNX uses ``torch.onnx.export`` (TorchScript-based exporter, ``dynamo=False``, since the
dynamo exporter needs ``onnxscript``) with a dynamic batch axis; it needs the ``export`` extra (``onnx``,
``onnxruntime``). Without it, ``export`` still writes the TorchScript file and ``export.json`` and then says in
one line which extra to install.

Parity: on random inputs in the normalised range, exported logits must equal PyTorch's within
``|a - b| <= atol + rtol * |b|``: TorchScript ``atol = rtol = 1e-5``, ONNX Runtime ``atol = rtol = 1e-4``.
"""

from __future__ import annotations

import importlib
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
#: the modules an export format needs beyond the core dependencies (the ``export`` extra of pyproject.toml)
NEEDS = {"torchscript": (), "onnx": ("onnx", "onnxruntime")}
EXTRA_HINT = 'pip install "medseg-masksup[export]"'


def missing_modules(fmt: str) -> list[str]:
    """The modules ``fmt`` needs that cannot be imported here."""
    missing = []
    for name in NEEDS[fmt]:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def preprocessing_spec(record) -> dict[str, Any]:
    """What to do around the exported network, from the record, as ``medseg-masksup infer`` does it.

    Before: channels, bit-depth scaling, the spatial step of ``record.spatial_mode`` (``resize`` to ``img_size``,
    or ``patch``: resize by ``scale`` keeping the aspect ratio, then ``img_size`` sliding windows), intensity
    clip and linear map onto ``normalised_range``. After: sigmoid, back to the input grid, threshold.
    """
    from ..data.preprocessing import WINDOW_BLEND
    from ..record import bit_scale
    from .options import InferenceOptions
    from .predictor import effective_mode

    mode = effective_mode(record, "auto")
    size, scale, depth = list(record.img_size), float(record.scale), int(record.bit_depth)
    (a_min, a_max), (b_min, b_max) = ([float(v) for v in r] for r in (record.intensity_range, record.normalised_range))
    window = {"roi_size": size, "overlap": InferenceOptions().overlap, "blend_mode": WINDOW_BLEND,
              "padding": "constant 0 (images smaller than a window)"} if mode == "sliding" else None
    if record.spatial_mode == "resize":
        spatial = f"resize to img_size {size} (area interpolation; the aspect ratio is not kept)"
    elif scale != 1.0:
        spatial = f"resize by scale {scale:g} (area interpolation, size floor(H·{scale:g}) × floor(W·{scale:g}); aspect ratio kept)"
    else:
        spatial = "keep the image's own size (scale 1: native pixels)"
    forward = (f"slide {size} windows over the image (overlap {window['overlap']:g}, {WINDOW_BLEND} blending; "
               "MONAI sliding_window_inference) and run the network on each" if window
               else f"run the network on the (batch, {record.in_channels}, {size[0]}, {size[1]}) tensor")
    steps = [
        f"channels first; grey repeated to {record.in_channels} channels, extra channels (alpha) dropped",
        *([f"multiply pixel values by {bit_scale(depth):.10g} ({depth}-bit onto the 8-bit scale)"] if depth != 8 else []),
        spatial,
        f"clip to [{a_min:g}, {a_max:g}] and map linearly onto [{b_min:g}, {b_max:g}] (float32)",
        forward,
        f"sigmoid of the logits, resized back to the input's height × width (bilinear), foreground where ≥ {record.prob_threshold:g}",
    ]
    return {
        "spatial_mode": record.spatial_mode, "inference_mode": mode, "img_size": size, "scale": scale,
        "in_channels": int(record.in_channels), "bit_depth": depth, "bit_scale": bit_scale(depth),
        "intensity_range": [a_min, a_max], "normalised_range": [b_min, b_max], "clip": True,
        "interpolation": "area", "sliding_window": window, "activation": "sigmoid",
        "prob_threshold": float(record.prob_threshold), "foreground": "probability >= prob_threshold",
        "probability_to_input_grid": "bilinear", "steps": steps,
        "out_of_range": "an image still outside intensity_range after the bit-depth scaling is mapped from its own "
                        "min..max onto intensity_range by medseg-masksup infer (or from --intensity_window)",
    }


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
        "_meta_#network_data_format#inputs#image#value_range": [float(v) for v in record.normalised_range],
        "_meta_#network_data_format#inputs#image#is_patch_data": record.spatial_mode == "patch",
        "_meta_#network_data_format#outputs#pred#spatial_shape": list(record.img_size),
        "_meta_#preprocessing": preprocessing_spec(record),
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

    ``export.json`` records the checkpoint, the input shape and :func:`preprocessing_spec`. Raises
    :class:`ExportParityError` if an export differs from PyTorch beyond its tolerance, and :class:`UserError`
    naming the ``export`` extra when ONNX was asked for but ``onnx`` / ``onnxruntime`` are not installed (after
    writing the TorchScript file and ``export.json`` if TorchScript was asked for too).
    """
    from ..checkpoint import load_network, resolve_checkpoint
    from ..io.atomic import write_json

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    unavailable = {f: m for f in formats if (m := missing_modules(f))}
    if unavailable and set(unavailable) == set(formats):
        raise UserError(_needs_extra(unavailable, "nothing was written"))
    network, record = load_network(ckpt, "cpu")
    ckpt_path = resolve_checkpoint(ckpt)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = example_input(record, batch=2)
    with torch.inference_mode():
        reference = network(x).numpy()
    report: dict[str, Any] = {"checkpoint": str(ckpt_path), "network": record.network, "network_size": record.network_size,
                              "input_shape": ["batch", int(record.in_channels), *record.img_size],
                              "output": "logits (batch, 1, *img_size)", "preprocessing": preprocessing_spec(record),
                              "exports": {}}
    if unavailable:
        report["not_written"] = {f: f"needs {', '.join(m)} (not installed): {EXTRA_HINT}" for f, m in unavailable.items()}
    if "torchscript" in formats:
        path = export_torchscript(ckpt_path, out / "model.ts")
        scripted = torch.jit.load(str(path), map_location="cpu").eval()
        with torch.inference_mode():
            result = scripted(x).numpy()
        report["exports"]["torchscript"] = {"path": str(path), **compare(reference, result, **TOLERANCES["torchscript"])}
    if "onnx" in formats and "onnx" not in unavailable:
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
    if unavailable:
        raise UserError(_needs_extra(unavailable, f"{', '.join(report['exports'])} and export.json were written to {out}"))
    return report


def _needs_extra(unavailable: dict[str, list[str]], done: str) -> str:
    needs = "; ".join(f"{f} export needs {', '.join(m)} (not installed)" for f, m in unavailable.items())
    return f"{needs}: install the export extra, {EXTRA_HINT}; {done}"
