"""Tiny stand-ins for the two applications, built from the concept modules only.

``TinySR`` has the super-resolution model's structure (a CNN conditioner on the low-resolution
image, a multi-scale flow with affine couplings and actnorm, uniform or variational
dequantization of 8-bit pixels); ``TinyVessel`` the vessel model's (VGG features, additive
couplings with instance-norm networks, :class:`ConditionalActNorm`, binary dequantization, eq. (8)
of Winkler et al. 2019). Both are small enough for CPU tests of numerics and compilation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from cnf_teach.dequantization import (
    BinaryDequantization,
    UniformDequantization,
    VariationalDequantization,
    dequantized_log_likelihood,
)
from cnf_teach.flows import ConditionalActNorm, MultiScaleFlow
from cnf_teach.nets import ConvConditioner
from cnf_teach.nets.vgg import InstanceNormCouplingNet, VGGFeatures

__all__ = ["TinySR", "TinyVessel", "sr_batch", "vessel_batch"]


class _Given(nn.Module):
    """A conditioner that passes precomputed feature maps through."""

    def forward(self, hs: list[Tensor]) -> list[Tensor]:
        return list(hs)


class TinySR(nn.Module):
    """$p(y \\mid x)$ for 2x super-resolution of 8-bit RGB images, ``x [B, 3, h, w] -> y [B, 3, 2h, 2w]``."""

    def __init__(self, variational: bool = False, width: int = 8) -> None:
        super().__init__()
        self.conditioner = ConvConditioner(3, width, levels=2, upscale=2, hidden=width)
        self.flow = MultiScaleFlow(3, 2, 2, conditioner=_Given(), cond_channels=width, hidden=width, prior_hidden=width)
        self.dequantizer: nn.Module = (
            VariationalDequantization(3, 256, steps=2, hidden=width, features=width)
            if variational
            else UniformDequantization(256)
        )

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        hs = self.conditioner(x.float() / 255 - 0.5)
        v, log_q = self.dequantizer(y)
        return self.flow.log_prob(v - 0.5, hs) - log_q

    def bits_per_dim(self, y: Tensor, x: Tensor) -> Tensor:
        return -self.log_prob(y, x) / (math.log(2.0) * y[0].numel())


class TinyVessel(nn.Module):
    """$P(y \\mid x)$ of binary maps ``y [B, 1, H, W]`` given photographs ``x [B, 3, H, W]``."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.features = VGGFeatures(3, (width, width, width), 1)
        self.flow = MultiScaleFlow(
            1,
            2,
            2,
            conditioner=_Given(),
            cond_channels=width,
            coupling="additive",
            prior_hidden=width,
            norm_factory=lambda c: ConditionalActNorm(c, width),
            net_factory=lambda i, o: InstanceNormCouplingNet(i, o, width),
        )
        self.dequantizer = BinaryDequantization(1, cond_channels=width, steps=2, hidden=width, features=width)

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        full, hs = self.features.all_features(x)
        return dequantized_log_likelihood(lambda v: self.flow.log_prob(v, hs), self.dequantizer, y, full)

    def bits_per_dim(self, y: Tensor, x: Tensor) -> Tensor:
        return -self.log_prob(y, x) / (math.log(2.0) * y[0].numel())


def sr_batch(batch: int = 4, size: int = 16, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(x, y)``: smooth random 8-bit HR images ``y [B, 3, size, size]`` and their 2x average-pooled LR ``x``."""
    base = torch.rand(batch, 3, size // 4, size // 4, generator=generator)
    hr = nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    hr = (hr + 0.05 * torch.rand(hr.shape, generator=generator)).clamp(0, 1)
    y = torch.floor(hr * 255.999)  # integers 0..255 as floats, [B, 3, size, size]
    x = torch.round(nn.functional.avg_pool2d(y, 2))  # [B, 3, size/2, size/2]
    return x, y


def vessel_batch(batch: int = 2, size: int = 16, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``(x, y)``: photographs ``x [B, 3, size, size]`` and binary maps ``y [B, 1, size, size]`` read off them."""
    x = torch.rand(batch, 3, size, size, generator=generator)
    y = (x[:, 1:2] + 0.1 * torch.randn(batch, 1, size, size, generator=generator) > 0.6).float()
    return x, y
