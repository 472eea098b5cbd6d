"""What ``medseg-masksup bench`` measures: the variants, the targets and the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


#: training variants: bundle overrides that select each
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"method": "baseline", "concat_branches": False},
    "masksup-sequential": {"method": "masksup", "concat_branches": False},
    "masksup-concat": {"method": "masksup", "concat_branches": True},
}
BASELINE = "baseline"
MASKSUP = "masksup-sequential"

#: the issue's targets
MAX_STEP_RATIO = 2.0
MAX_MASK_SHARE = 0.05
MIN_LOADER_FACTOR = 3.0
INFERENCE_RATIO_TOLERANCE = 0.03


# --------------------------------------------------------------------------------------------------
# settings


@dataclass
class BenchSettings:
    """What to measure. ``steps`` training iterations per variant per round, ``rounds`` timed rounds."""

    network: str = "unet"
    network_size: str = "small"
    img_size: tuple[int, ...] = (128, 128)
    batch: int = 8
    steps: int = 10
    rounds: int = 5
    warmup: int = 1
    device: str = "auto"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    plain_tensors: bool = False
    keep_memory: bool = False
    timer: str = "wall"  # CPU: "wall" (perf_counter) or "cpu" (process CPU time, steadier on a shared machine)
    variants: tuple[str, ...] = tuple(VARIANTS)
    infer_batch: int = 1
    infer_steps: int = 50
    loader_batches: int = 0  # 0: one epoch of the training loader per round
    config_file: str | Sequence[str] = ""  # "" = the installed bundle's train.json
    output_dir: str = "runs"
    datalist: str = ""
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    profile_dir: str = ""

    def __post_init__(self) -> None:
        self.img_size = tuple(int(s) for s in self.img_size)
        self.variants = tuple(self.variants)
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        for name in ("batch", "steps", "rounds", "infer_batch", "infer_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0 or self.loader_batches < 0 or self.threads < 0:
            raise ValueError("warmup, loader_batches and threads must be >= 0")
