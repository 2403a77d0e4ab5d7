"""Conditional actnorm: actnorm whose shift and scale come from the instance statistics of $h = g(x)$.

What the paper says. In the vessel-segmentation flow, Winkler et al. 2019 (§5.2, item
*i)* of "Implementation") replace activation normalisation with instance normalisation
(Ulyanov et al. 2016), without further detail.

Why a literal instance norm cannot be a flow layer. Instance normalisation maps each
sample's channel to $z_c = (y_c - \\bar y_c) / s_c(y)$ with the mean $\\bar y_c$ and
standard deviation $s_c(y)$ of *that sample's own* channel. Every output then has zero
mean and unit variance per channel, so all inputs that differ only by a per-channel
shift and positive scale map to the same $z$: the map is not injective, $y$ cannot be
recovered from $z$, and its Jacobian is singular (two directions per channel are
flattened; $\\log|\\det| = -\\infty$). A flow built from it has no density (the tests
check this with the brute-force Jacobian).

What this layer is instead. The reason to prefer instance statistics over actnorm's
batch-initialised constants is that each image has its own statistics (illumination,
vessel density), and with a batch of 2 a data-dependent initialisation is noisy. In a
*conditional* flow every image comes with its conditioning features $h = g(x)$, and
any map whose parameters depend on $h$ but not on $y$ stays an exact bijection in $y$.
So :class:`ConditionalActNorm` is a per-sample, per-channel affine map

$$z_c = (y_c - b_c(h)) \\, e^{-s_c(h)}, \\qquad
  [b(h), s(h)] = [b^0, s^0] + W\\,[\\mathrm{mean}(h), \\mathrm{std}(h)],$$

where $\\mathrm{mean}(h)$, $\\mathrm{std}(h)$ are the instance statistics of the
conditioning features (per channel, over pixels), $W$ a linear map that starts at
zero, and $b^0, s^0$ actnorm's parameters with its data-dependent initialisation. Given
$h$ the Jacobian is diagonal, $\\log|\\det \\partial z / \\partial y| = -HW\\sum_c s_c(h)$,
exactly, per sample; without conditioning the layer is actnorm. This is the project's
reading of §5.2 i) (see the "Readings and deviations" page); the instance norm of the
paper's Table 7 sits inside a coupling network, which is never inverted, and is used
literally there (:class:`cnf_teach.nets.vgg.InstanceNormCouplingNet`).

Precision: the statistics of $h$ and the linear map run in (at least) float32 with autocast
off, whatever precision the conditioner used, so $b(h)$, $s(h)$ and the log-determinant are as
exact as in a float32 run.

References:
    Ulyanov, Vedaldi, Lempitsky. Instance Normalization. 2016.
    Kingma, Dhariwal. Glow. NeurIPS 2018 (actnorm and its initialisation).
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..utils import autocast_off, check_condition, high_precision, to_high_precision
from .actnorm import ActNorm

__all__ = ["ConditionalActNorm", "instance_statistics"]


def instance_statistics(h: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-sample, per-channel mean and standard deviation over pixels: ``[B, C, H, W] -> [B, 2C]``."""
    flat = h.reshape(h.shape[0], h.shape[1], -1)  # [B, C, HW]
    mean = flat.mean(dim=2)  # [B, C]
    # The two-pass variance, the mean of the squared deviations: the same value as torch.var (to
    # float rounding) at a tenth of its time on the CPU, where torch.var's single-pass kernel is slow.
    centred = flat - mean.unsqueeze(2)  # [B, C, HW]
    std = (centred.square().mean(dim=2) + eps).sqrt()
    return torch.cat([mean, std], dim=1)


class ConditionalActNorm(ActNorm):
    """Actnorm whose shift and log-scale also depend on the instance statistics of $h = g(x)$.

    The project's bijective stand-in for the instance normalisation of §5.2 i); see the
    module docstring for why a literal instance norm is not a bijection. Works on images
    ``[B, C, H, W]``. Its parameters and buffers are actnorm's (``bias``, ``log_scale``,
    ``initialized``) plus the linear map ``cond`` (``cond.weight``, ``cond.bias``).

    Args:
        num_channels: Channels $C$ of $y$.
        cond_channels: Channels of the conditioning features $h$ (0 = plain actnorm).
        eps: Added to standard deviations.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import ConditionalActNorm
        >>> _ = torch.manual_seed(0)
        >>> layer = ConditionalActNorm(4, cond_channels=3)
        >>> _ = torch.nn.init.normal_(layer.cond.weight, std=0.1)  # as after training (W starts at zero)
        >>> y, h = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8)
        >>> z, logdet = layer(y, h)
        >>> z.shape, logdet.shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> bool(logdet[0] != logdet[1])  # each sample's scale depends on its own h
        True
        >>> torch.allclose(layer.inverse(z, h), y, atol=1e-5)
        True
    """

    def __init__(self, num_channels: int, cond_channels: int = 0, eps: float = 1e-6) -> None:
        super().__init__(num_channels, eps)
        self.cond_channels = cond_channels
        self.cond = None
        if cond_channels > 0:
            self.cond = nn.Linear(2 * cond_channels, 2 * num_channels)
            nn.init.zeros_(self.cond.weight)
            nn.init.zeros_(self.cond.bias)

    def shift_log_scale(self, y: Tensor, h: Tensor | None) -> tuple[Tensor, Tensor]:
        """$b(h)$ and $s(h)$, each ``[B, C, 1, 1]`` (broadcast over pixels)."""
        b = self.bias.view(1, -1).expand(y.shape[0], -1)  # [B, C]
        s = self.log_scale.view(1, -1).expand(y.shape[0], -1)
        if self.cond is not None:
            check_condition(self, y, h, self.cond_channels)
            with autocast_off(h):
                stats = instance_statistics(h.to(high_precision(self.cond.weight.dtype)))  # [B, 2 C_h]
                delta = self.cond(stats)  # [B, 2C]
            b = b + delta[:, 0::2]
            s = s + delta[:, 1::2]
        return b[..., None, None], s[..., None, None]

    def _check_images(self, t: Tensor) -> None:
        self._check(t)
        if t.dim() != 4:
            raise ValueError(f"ConditionalActNorm expects images [B, C, H, W], got shape {tuple(t.shape)}")

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check_images(y)
        y = to_high_precision(y)
        if self.training and not self._initialized:
            self.initialize(y)  # actnorm's data-dependent start; W = 0, so this is exact
        b, s = self.shift_log_scale(y, h)
        z = (y - b) * torch.exp(-s)
        logdet = -s.reshape(y.shape[0], -1).sum(dim=1) * y[0, 0].numel()  # [B]
        return z, logdet

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check_images(z)  # vectors would broadcast against [B, C, 1, 1] into a wrong shape
        z = to_high_precision(z)
        b, s = self.shift_log_scale(z, h)
        return z * torch.exp(s) + b
