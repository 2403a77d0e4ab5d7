"""Invertible 1x1 convolution: a learned mixing of channels.

$z_{:, i, j} = W y_{:, i, j}$ at every pixel with one $C \\times C$ matrix $W$, so
$\\log|\\det| = H W \\log|\\det W|$. It generalises the fixed permutations between
coupling layers (Kingma & Dhariwal 2018, §3.2). Two ways to get $\\log|\\det W|$:

- plain: ``torch.linalg.slogdet`` of $W$, $O(C^3)$ per step;
- LU: $W = P L (U + \\mathrm{diag}(\\mathrm{sign}(s) e^{\\log|s|}))$ with $P$ a fixed
  permutation, $L$ unit lower-triangular, $U$ strictly upper-triangular; then
  $\\log|\\det W| = \\sum \\log|s|$, $O(C)$.

Precision: the weight, its log-determinant, the product and the inverse are computed in
float32 (float64 when the layer is in float64) with autocast switched off. In bf16 the
matrix product would round away the dequantization noise of 8-bit data (a bin is about
as wide as bf16's spacing after actnorm), and the layer would stop being a bijection.

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..utils import autocast_off, high_precision
from .base import Bijection

__all__ = ["InvertibleConv1x1"]


def _apply(weight: Tensor, y: Tensor) -> Tensor:
    """Multiply every pixel's channel vector by ``weight``: ``[B, C, ...] -> [B, C, ...]``."""
    return torch.einsum("oc,bc...->bo...", weight, y)


class InvertibleConv1x1(Bijection):
    """Invertible 1x1 convolution, plain or LU-decomposed.

    Works on images ``[B, C, H, W]`` (mixing channels at each pixel) and on vectors
    ``[B, C]``. Initialised at a random rotation, so $\\log|\\det W| = 0$ at start.

    Args:
        num_channels: Channels $C$.
        lu: Use the LU parametrisation (cheap log-determinant) instead of slogdet.
        generator: Optional random generator for the initial rotation.
    """

    def __init__(self, num_channels: int, lu: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.lu = lu
        q, _ = torch.linalg.qr(torch.randn(num_channels, num_channels, generator=generator))
        if not lu:
            self.weight = nn.Parameter(q)
            return
        p, lower, upper = torch.linalg.lu(q)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(num_channels, num_channels), -1))
        self.register_buffer("eye", torch.eye(num_channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight_and_logabsdet(self) -> tuple[Tensor, Tensor]:
        """The matrix $W$ ``[C, C]`` and $\\log|\\det W|$ (a scalar), in at least float32 under any autocast."""
        ref = self.weight if not self.lu else self.lower
        dtype = high_precision(ref.dtype)
        with autocast_off(ref):
            if not self.lu:
                weight = self.weight.to(dtype)
                return weight, torch.linalg.slogdet(weight)[1]
            lower = self.lower.to(dtype) * self.lower_mask + self.eye
            upper = self.upper.to(dtype) * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s.to(dtype)))
            # P @ L is a row gather, L[perm_index]: saves one of the two C^3 matmuls (forward and backward).
            return lower[self.perm.argmax(dim=1)] @ upper, self.log_s.to(dtype).sum()

    def _check(self, y: Tensor) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_channels:
            raise ValueError(
                f"InvertibleConv1x1 was built for {self.num_channels} channels but got input of shape "
                f"{tuple(y.shape)}; build it with num_channels={y.shape[1] if y.dim() > 1 else '?'}"
            )

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        weight, logabsdet = self.weight_and_logabsdet()
        pixels = y[0, 0].numel()  # H * W
        dtype = torch.promote_types(weight.dtype, y.dtype)
        with autocast_off(y):
            z = _apply(weight.to(dtype), y.to(dtype))  # [B, C, H, W]
        return z, (logabsdet * pixels).expand(y.shape[0])

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        weight, _ = self.weight_and_logabsdet()
        dtype = torch.promote_types(weight.dtype, z.dtype)
        with autocast_off(z):
            return _apply(torch.linalg.inv(weight.to(dtype)), z.to(dtype))
