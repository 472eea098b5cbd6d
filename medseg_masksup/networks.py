"""MONAI segmentation backbones by name, with the input-size divisibility each one needs."""

from __future__ import annotations

from torch import nn

NETWORKS = ("unet", "swinunetr", "unetpp", "attentionunet")
SIZES = ("small", "base")


def _check(name: str, size: str) -> None:
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {', '.join(NETWORKS)}")
    if size not in SIZES:
        raise ValueError(f"unknown network size {size!r}; choose one of {', '.join(SIZES)}")


def required_divisor(name: str, size: str = "small") -> int:
    """Each spatial size of the input must be a multiple of this for ``build_network(name, size)``."""
    _check(name, size)
    if name == "swinunetr":
        return 32
    if name in ("unet", "attentionunet"):
        return 8 if size == "small" else 16
    return 16


def build_network(
    name: str = "unet", spatial_dims: int = 2, in_channels: int = 3, out_channels: int = 1, size: str = "small"
) -> nn.Module:
    """A MONAI segmentation network returning logits: ``unet``, ``swinunetr``, ``unetpp`` or ``attentionunet``.

    ``small`` fits CPU training on the embedded data; ``base`` is the usual GPU configuration.
    """
    from monai.networks import nets

    _check(name, size)
    small = size == "small"
    if name == "unet":
        channels, strides = ((16, 32, 64, 128), (2, 2, 2)) if small else ((32, 64, 128, 256, 512), (2, 2, 2, 2))
        return nets.UNet(spatial_dims, in_channels, out_channels, channels=channels, strides=strides, num_res_units=2)
    if name == "attentionunet":
        channels, strides = ((16, 32, 64, 128), (2, 2, 2)) if small else ((32, 64, 128, 256, 512), (2, 2, 2, 2))
        return nets.AttentionUnet(spatial_dims, in_channels, out_channels, channels=channels, strides=strides)
    if name == "unetpp":
        features = (16, 16, 32, 64, 128, 16) if small else (32, 32, 64, 128, 256, 32)
        return nets.BasicUNetPlusPlus(spatial_dims, in_channels, out_channels, features=features)
    return nets.SwinUNETR(
        in_channels=in_channels, out_channels=out_channels, feature_size=12 if small else 24, spatial_dims=spatial_dims
    )


def count_parameters(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)
