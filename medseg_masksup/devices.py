"""The one device picker: every command, bundle and tool asks here which device to run on."""

from __future__ import annotations

import os

import torch

from .errors import UserError


def choose_device(name: str | torch.device | None = None) -> torch.device:
    """The device to run on.

    ``None``, ``""`` or ``"auto"``: ``cuda:<LOCAL_RANK>`` when CUDA is available (``cuda:0`` outside
    torchrun), else the CPU. Any other name is taken as given (``cpu``, ``cuda``, ``cuda:1``); asking
    for CUDA on a machine without it is a :class:`~medseg_masksup.errors.UserError`.
    """
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"unknown device {name!r} ({err})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available")
    return device
