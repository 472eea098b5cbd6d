"""What a checkpoint records of its training, so inference can rebuild the exact network and preprocessing."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from typing import Any

RECORD_FORMAT = "medseg-masksup/1"


@dataclass
class TrainingRecord:
    """Network, preprocessing and method settings of a training run; saved in every checkpoint.

    ``spatial_mode`` says how images meet the network (see :mod:`medseg_masksup.data.preprocessing`):
    ``resize`` squashes every image to ``img_size``; ``patch`` keeps the aspect ratio, resizes by
    ``scale`` (1.0 = native pixels), trains on random ``img_size`` patches and predicts with a
    sliding window of ``img_size``. Records written before these fields existed read as ``resize``.

    The fields that are training settings are those declared ``recorded`` in
    :mod:`medseg_masksup.training.settings` (a test keeps the two equal); their defaults here say what a record
    written before the field existed means, not the training default.

    Has ``state_dict``/``load_state_dict`` so MONAI's CheckpointSaver stores it beside the weights
    (plain types only, so ``torch.load(..., weights_only=True)`` reads it back).
    """

    network: str = "unet"
    network_size: str = "small"
    spatial_dims: int = 2
    in_channels: int = 3
    out_channels: int = 1
    img_size: list[int] = field(default_factory=lambda: [128, 128])
    spatial_mode: str = "resize"
    scale: float = 1.0
    #: raw pixel values span ``0 .. 2**bit_depth - 1``; training and inference both scale them by
    #: ``255 / (2**bit_depth - 1)`` onto the 8-bit scale before ``intensity_range`` applies (see :func:`bit_scale`)
    bit_depth: int = 8
    intensity_range: list[float] = field(default_factory=lambda: [0.0, 255.0])
    normalised_range: list[float] = field(default_factory=lambda: [-1.0, 1.0])
    label_threshold: float = 0.0
    prob_threshold: float = 0.5
    method: str = "masksup"
    alpha: float = 1.0
    beta: float = 1.0
    gamma: float = 1.0
    seg_loss: str = "bce"
    #: ``symmetric`` (paper) or ``to_clean`` (stop-gradient on the clean prediction)
    consistency: str = "symmetric"
    #: share of each batch that goes through the masked branch (1.0: all, as in the paper)
    masked_share: float = 1.0
    mask_kind: str = "freeform"
    mask_ratio: list[float] = field(default_factory=lambda: [0.4, 0.6])
    mask_warmup_epochs: int = 0
    #: MaskSup only: the last N epochs trained the clean branch alone
    clean_final_epochs: int = 0
    concat_branches: bool = False
    augmentation: str = "light"
    stain_jitter: bool = False
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    epochs: int = 0
    #: training samples per epoch (0: one pass over the training set)
    samples_per_epoch: int = 0
    batch_size: int = 0
    lr: float = 0.0
    weight_decay: float = 0.0
    #: decay of the weights' exponential moving average (0: none); with one, the checkpoint's weights are the average
    ema_decay: float = 0.0
    seed: int = 0
    val_fold: int = 0
    dataset: str = ""
    dataset_fingerprint: str = ""
    n_train: int = 0
    n_val: int = 0
    n_parameters: int = 0
    mlflow_experiment: str = ""
    mlflow_run_id: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    format: str = RECORD_FORMAT

    def __post_init__(self) -> None:
        if not self.versions:
            import monai
            import torch

            self.versions = {"python": platform.python_version(), "torch": str(torch.__version__), "monai": str(monai.__version__)}
        self.img_size = [int(s) for s in self.img_size]
        self.bit_depth = int(self.bit_depth)
        self.mask_ratio = [float(r) for r in self.mask_ratio]
        self.scale = float(self.scale)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for key, value in state.items():
            if key in known:
                setattr(self, key, value)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TrainingRecord:
        record = cls()
        record.load_state_dict(state)
        return record

    def params(self) -> dict[str, str]:
        """Flat string parameters for MLflow."""
        out = {}
        for key, value in asdict(self).items():
            if key in ("mlflow_run_id", "mlflow_experiment"):
                continue
            if isinstance(value, dict):
                out.update({f"{key}.{k}": str(v) for k, v in value.items()})
            else:
                out[key] = json.dumps(value) if isinstance(value, list) else str(value)
        return out


def bit_scale(bit_depth: int) -> float:
    """Factor that brings ``bit_depth``-bit pixel values onto the 8-bit scale, full range to full range."""
    return 255.0 / (2 ** int(bit_depth) - 1)
