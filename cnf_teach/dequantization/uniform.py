"""Uniform dequantization: $v = (y + u) / K$ with uniform $u$, the bound with nothing to learn.

Bin $k$ of $K$ is $[k/K, (k+1)/K)$ and $q$ is uniform on it, so $\\log q(v \\mid y) = D \\log K$
for every sample (Theis et al. 2016; eqs. (2)-(4) of Winkler et al. 2019). Its own file because
it is the reference the learned dequantizers (:mod:`cnf_teach.dequantization.learned`) are
compared with, and it needs none of their machinery: no networks, no flow, no parameters.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §2.1 (eqs. 2-4).
    Theis, van den Oord, Bethge. A note on the evaluation of generative models. ICLR 2016.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..utils import high_precision, to_high_precision
from .checks import check_discrete, keep_in_bin

__all__ = ["UniformDequantization"]


class UniformDequantization(nn.Module):
    """$v = (y + u) / K$, $u \\sim \\mathcal{U}[0, 1)^D$: uniform noise in bin $y$ of width $1/K$.

    Implements uniform dequantization (Theis et al. 2016; eqs. (2)-(4) of Winkler et al.
    2019). The density of $v$ is $K^D$ on the bin, so $\\log q(v \\mid y) = D \\log K$, and
    $\\log p(v) - D\\log K \\le \\log P(y)$. With $K = 2$ (binary masks) $y = 0$ maps to
    $[0, 1/2)$ and $y = 1$ to $[1/2, 1)$.

    Args:
        num_bins: $K$ (256 for 8-bit data, 2 for masks).

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import UniformDequantization
        >>> _ = torch.manual_seed(0)
        >>> deq = UniformDequantization(num_bins=256)
        >>> y = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)  # 8-bit images
        >>> v, log_q = deq(y)
        >>> bool(((v * 256).floor() == y).all())  # each v in its bin [y/256, (y+1)/256)
        True
        >>> log_q.shape, round(float(log_q[0]), 3)  # D log K = 192 log 256
        (torch.Size([2]), 1064.674)
        >>> deq(v)  # data already scaled to [0, 1] are not bin indices
        Traceback (most recent call last):
        ...
        ValueError: y must hold integers in {0, ..., 255} (bin indices), but it has non-integer values...
    """

    def __init__(self, num_bins: int = 256) -> None:
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = num_bins

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Sample $v \\sim q(v \\mid y)$ and return ``(v, log_q)``.

        Args:
            y: Integers in $\\{0, \\dots, K-1\\}$, ``[B, ...]``.
            h: Ignored (uniform noise depends on nothing); accepted for a common interface.

        Returns:
            ``v`` (float, shaped like ``y``, in $[0, 1)$) and ``log_q`` $= D\\log K$, ``[B]``.
        """
        check_discrete(y, self.num_bins)
        y = to_high_precision(y)  # integers and bf16 -> float32
        v = keep_in_bin((y + torch.rand_like(y)) / self.num_bins, y, self.num_bins)
        log_q = y.new_full((y.shape[0],), y[0].numel() * math.log(self.num_bins))
        return v, log_q

    def log_prob(self, v: Tensor, y: Tensor, h: Tensor | None = None) -> Tensor:
        """$\\log q(v \\mid y)$, ``[B]``: $D \\log K$ inside bin $y$, $-\\infty$ outside."""
        check_discrete(y, self.num_bins)
        # The bin's edges as forward computes them (floor(v K) == y can disagree by one rounding
        # step at an edge for K that is not a power of two, e.g. v = 53/100).
        yv = y.to(v.dtype)
        lo, hi = yv / self.num_bins, (yv + 1) / self.num_bins
        inside = ((v >= lo) & (v < hi)).reshape(v.shape[0], -1).all(dim=1)
        log_q = torch.full(
            (v.shape[0],), v[0].numel() * math.log(self.num_bins), dtype=high_precision(v.dtype), device=v.device
        )
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))
