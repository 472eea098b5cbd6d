"""medseg-masksup: Masked Supervised Learning (MaskSup, BMVC 2022) for binary medical image segmentation.

The method lives in three modules: :mod:`.masking` (occlusion masks), :mod:`.loss` (the objective)
and :mod:`.wrapper` (two weight-sharing branches); :mod:`.trainer` plugs them into MONAI.
"""

from .method.loss import MaskSupLoss, MaskSupLossParts
from .method.masking import MASK_KINDS, MaskGenerator
from .networks import NETWORKS, build_network
from .record import TrainingRecord
from .method.trainer import MaskSupTrainer
from .method.wrapper import MaskSup, MaskSupOutput

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
