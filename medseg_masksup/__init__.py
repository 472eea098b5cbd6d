"""medseg-masksup: Masked Supervised Learning (MaskSup, BMVC 2022) for binary medical image segmentation.

The method lives in three modules: :mod:`.masking` (occlusion masks), :mod:`.loss` (the objective)
and :mod:`.wrapper` (two weight-sharing branches); :mod:`.trainer` plugs them into MONAI.
"""

from .loss import MaskSupLoss, MaskSupLossParts
from .masking import MASK_KINDS, MaskGenerator
from .networks import NETWORKS, build_network
from .record import TrainingRecord
from .trainer import MaskSupTrainer
from .wrapper import MaskSup, MaskSupOutput

__version__ = "0.1.0"
__all__ = [
    "MASK_KINDS",
    "NETWORKS",
    "MaskGenerator",
    "MaskSup",
    "MaskSupLoss",
    "MaskSupLossParts",
    "MaskSupOutput",
    "MaskSupTrainer",
    "TrainingRecord",
    "build_network",
]
