"""Activation normalisation (actnorm) with data-dependent initialisation.

$z = (y - b) \\odot e^{-s}$ per channel, with $b$ and $s$ set on the first batch so
that every channel of $z$ has zero mean and unit variance, then trained as ordinary
parameters (Kingma & Dhariwal 2018, §3.1). It plays the role batch norm plays in
other networks, but is an exact bijection independent of the batch after
initialisation. For ``[B, C, H, W]`` inputs each channel's log-scale counts once per
pixel: $\\log|\\det| = -H W \\sum_c s_c$.

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .base import Bijection

__all__ = ["ActNorm"]


class ActNorm(Bijection):
    """Per-channel affine normalisation, initialised from the first batch it sees.

    Works on vectors ``[B, C]`` and images ``[B, C, H, W]``. Initialisation happens
    on the first call to :meth:`forward` in training mode; until then the layer is
    the identity. ``initialized`` is a buffer so it travels in checkpoints.

    Args:
        num_channels: Channels (or features) $C$.
        eps: Added to the standard deviation at initialisation.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.log_scale = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("initialized", torch.tensor(False))

    def _view(self, p: Tensor, y: Tensor) -> Tensor:
        return p.view(1, -1, *([1] * (y.dim() - 2)))  # [1, C, 1, 1] for images

    def _check(self, y: Tensor) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_channels:
            raise ValueError(
                f"ActNorm was built for {self.num_channels} channels but got input of shape "
                f"{tuple(y.shape)}; build it with num_channels={y.shape[1] if y.dim() > 1 else '?'}"
            )

    @torch.no_grad()
    def initialize(self, y: Tensor) -> None:
        """Set bias and scale so that ``forward(y)`` has zero mean, unit variance per channel."""
        flat = y.transpose(0, 1).reshape(self.num_channels, -1)  # [C, B*H*W]
        self.bias.copy_(flat.mean(dim=1))
        std = flat.std(dim=1, unbiased=False) if flat.shape[1] > 1 else torch.ones_like(self.bias)
        self.log_scale.copy_(torch.log(std + self.eps))
        self.initialized.fill_(True)

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        if self.training and not bool(self.initialized):
            self.initialize(y)
        z = (y - self._view(self.bias, y)) * torch.exp(-self._view(self.log_scale, y))
        pixels = y[0, 0].numel()  # H * W for images, 1 for vectors
        logdet = -self.log_scale.sum() * pixels
        return z, logdet.expand(y.shape[0])

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        return z * torch.exp(self._view(self.log_scale, z)) + self._view(self.bias, z)
