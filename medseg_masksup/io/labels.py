"""What a mask's stored values mean: the one binarisation rule of training, validation, evaluation,
robustness and the study report.

A mask is read with its stored values (palette indices, instance ids, 0/255 …; pictures through
:class:`.read_image2d.Image2DReader` ``(label=True)``), and a pixel is foreground when its first channel is above
``label_threshold`` (:func:`binarise_label`). Unlike an image, a mask holding NaN / inf values is not filled in
(:mod:`.intensity`): it is refused, naming the file and the count (:class:`NonFiniteLabelError`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError


class NonFiniteLabelError(InputError):
    """A mask holding NaN / inf values (``NaN > threshold`` would silently make them background)."""


def nonfinite_label_note(count: int, total: int) -> str:
    """The one wording of a refused mask's non-finite values."""
    return (f"{count} of {total} label values are not finite (NaN/inf); a mask must hold finite values "
            "(0/1, 0/255 or class ids)")


def count_nonfinite(values: Any) -> int:
    """NaN / inf values of a numpy array or torch tensor (0 for integer ones)."""
    if isinstance(values, np.ndarray):
        if not np.issubdtype(values.dtype, np.floating):
            return 0
        return int(values.size - np.count_nonzero(np.isfinite(values)))
    import torch

    if not torch.is_floating_point(values):
        return 0
    return int(values.numel() - torch.isfinite(values).sum().item())


def binarise_label(label: Any, threshold: float, source: str = "") -> Any:
    """``label[:1] > threshold``: a channel-first mask (numpy array or torch tensor, stored values) → one boolean
    channel of the same type. Raises :class:`NonFiniteLabelError` (prefixed with ``source``, the file) when the
    mask holds NaN / inf values."""
    bad = count_nonfinite(label)
    if bad:
        total = label.size if isinstance(label, np.ndarray) else label.numel()
        raise NonFiniteLabelError(f"{source}: {nonfinite_label_note(bad, int(total))}" if source
                                  else nonfinite_label_note(bad, int(total)))
    return label[:1] > threshold
