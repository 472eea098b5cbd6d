"""Shared helpers for the inference / evaluation / robustness / export tests.

- tiny checkpoints in the training format (``{"model", "training_record"}``): random weights, or a
  ``small`` UNet trained for a few seconds (once per test process) to segment bright objects on a
  dark background, so round-trip tests can check that a known object is found where it is;
- pictures, volumes and DICOM files with known geometry, written with independent libraries
  (PIL, nibabel, pydicom, SimpleITK) so a reader/writer bug cannot cancel itself out.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from medseg_masksup.networks import build_network
from medseg_masksup.record import TrainingRecord

IMG_SIZE = [32, 32]


def make_record(**overrides) -> TrainingRecord:
    values = dict(network="unet", network_size="small", img_size=list(IMG_SIZE), dataset="bright-test",
                  mlflow_experiment="masksup-bright-test", method="masksup", mask_kind="patch")
    values.update(overrides)
    return TrainingRecord(**values)


def save_checkpoint(path: str | Path, network: torch.nn.Module, record: TrainingRecord) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": network.state_dict(), "training_record": record.state_dict()}, path)
    return path


def random_checkpoint(path: str | Path, seed: int = 0, **overrides) -> Path:
    record = make_record(**overrides)
    torch.manual_seed(seed)
    network = build_network(record.network, 2, record.in_channels, record.out_channels, record.network_size)
    return save_checkpoint(path, network, record)


def _training_batch(rng: np.random.Generator, n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark noisy backgrounds (0–70) with 1–2 bright (170–255) boxes/ellipses; colour or grey."""
    base = rng.uniform(0, 60, (n, 1, 1, 1))
    spread = rng.uniform(0, 40, (n, 1, 1, 1)) * (rng.random((n, 1, 1, 1)) > 0.2)  # some flat
    x = (base + spread * rng.random((n, 3, size, size))).astype(np.float32)
    y = np.zeros((n, 1, size, size), np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            h, w = rng.integers(3, 16, 2)
            r, c = rng.integers(0, size - h), rng.integers(0, size - w)
            if rng.random() < 0.5:
                m = np.zeros((size, size), bool)
                m[r : r + h, c : c + w] = True
            else:
                m = ((yy - r - h / 2) / (h / 2)) ** 2 + ((xx - c - w / 2) / (w / 2)) ** 2 <= 1
            x[i][:, m] = rng.uniform(170, 255, (3, 1))
            y[i, 0][m] = 1
        if rng.random() < 0.4:
            x[i] = x[i].mean(0, keepdims=True)
    return torch.from_numpy(x / 127.5 - 1), torch.from_numpy(y)  # the record's [0, 255] → [-1, 1]


_TMP = Path(tempfile.mkdtemp(prefix="medseg-infer-tests-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)


@functools.cache
def bright_checkpoint() -> Path:
    """A checkpoint whose small UNet segments bright objects (Dice > 0.9 on its task); trained once.

    One thread: deterministic, and on a shared, busy CPU ~10× faster than competing for two.
    """
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    record = make_record()
    network = build_network("unet", 2, 3, 1, "small")
    optimiser = torch.optim.Adam(network.parameters(), 3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(200):
            x, y = _training_batch(rng, 16)
            logits = network(x)
            prob = torch.sigmoid(logits)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
            loss = loss + 1 - (2 * (prob * y).sum() + 1) / (prob.sum() + y.sum() + 1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return save_checkpoint(_TMP / "bright" / "model.pt", network.eval(), record)


# ----------------------------------------------------------------------------- images


def box_mask(shape: tuple[int, ...], box: tuple[slice, ...]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[box] = True
    return mask


def picture(height: int, width: int, box: tuple[slice, slice], channels: int = 3, fg: float = 230, bg: float = 30,
            dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """``(H, W[, C])`` dark noisy picture with a bright rectangle at ``box`` (rows, cols)."""
    rng = np.random.default_rng(seed)
    grey = rng.uniform(bg - 15, bg + 15, (height, width))
    grey[box] = fg
    image = np.repeat(grey[..., None], channels, axis=2) if channels > 1 else grey
    return image.astype(dtype)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def grown(mask: np.ndarray, pixels: int = 2) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=pixels)


# ----------------------------------------------------------------------------- DICOM


def ct_header(study: str, series: str, patient_name: str, patient_id: str):
    """A pydicom CT dataset with its file meta, UIDs and patient fields, no image attributes yet."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.PatientName, ds.PatientID, ds.Modality = patient_name, patient_id, "CT"
    return ds


def write_dicom_series(folder: str | Path, volume_zyx: np.ndarray, spacing=(0.8, 0.6, 2.5), origin=(10.0, -20.0, 30.0),
                       row_dir=(1.0, 0.0, 0.0), col_dir=(0.0, 0.0, -1.0), names: list[str] | None = None) -> list[Path]:
    """Classic CT slices with pydicom. ``spacing`` = (between rows, between columns, between slices) in mm;
    ``row_dir``/``col_dir``: LPS directions of increasing column / row index (ImageOrientationPatient)."""
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    normal = np.cross(row_dir, col_dir)
    study, series = generate_uid(), generate_uid()
    paths = []
    for k, plane in enumerate(volume_zyx):
        ds = ct_header(study, series, "Test^Phantom", "0001")
        ds.FrameOfReferenceUID = study
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        position = np.asarray(origin) + normal * spacing[2] * k
        ds.ImagePositionPatient = [round(float(v), 4) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(plane.astype(np.int16)).tobytes()
        name = names[k] if names else f"slice_{(k * 7919) % 1000:03d}.dcm"  # names not in slice order
        ds.save_as(folder / name, enforce_file_format=True)
        paths.append(folder / name)
    return paths


def dicom_ras_affine(spacing, origin, row_dir, col_dir) -> np.ndarray:
    """Voxel (column, row, slice) → RAS affine expected for a series written by :func:`write_dicom_series`."""
    normal = np.cross(row_dir, col_dir)
    lps = np.eye(4)
    lps[:3, 0] = np.asarray(row_dir) * spacing[1]
    lps[:3, 1] = np.asarray(col_dir) * spacing[0]
    lps[:3, 2] = normal * spacing[2]
    lps[:3, 3] = origin
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def write_labelled_set(folder: str | Path, n: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0) -> Path:
    """PNG images with one bright box each, 0/255 PNG labels, and a datalist.json (validation list)."""
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        h, w = rng.integers(8, 18, 2)
        r, c = rng.integers(2, size[0] - h - 2), rng.integers(2, size[1] - w - 2)
        box = (slice(r, r + h), slice(c, c + w))
        Image.fromarray(picture(*size, box, seed=seed + i)).save(folder / "images" / f"case{i}.png")
        Image.fromarray(box_mask(size, box).astype(np.uint8) * 255).save(folder / "labels" / f"case{i}.png")
        items.append({"image": f"images/case{i}.png", "label": f"labels/case{i}.png", "id": f"case{i}"})
    path = folder / "datalist.json"
    path.write_text(json.dumps({"name": "bright-test", "training": [], "validation": items, "test": []}))
    return path


@functools.cache
def shared_tracking_uri() -> str:
    """One MLflow store for the whole test process (creating a SQLite store takes seconds)."""
    from medseg_masksup.tracking.store import sqlite_uri

    return sqlite_uri(str(_TMP / "mlflow.db"))


def shared_experiment(name: str = "masksup-bright-test") -> str:
    """Id of experiment ``name`` in the shared store, artifacts kept in the test temp folder."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(shared_tracking_uri())
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=(_TMP / "mlartifacts").as_uri())
