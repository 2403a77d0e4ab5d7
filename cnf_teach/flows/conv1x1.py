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

Inverse cache: in eval mode without gradients (sampling, evaluation), $W^{-1}$ is computed
once and reused until a parameter or buffer changes (any in-place update, such as an optimizer
step or ``load_state_dict``, bumps its version counter), the layer moves, or it returns to
training mode. Training never uses the cache.

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..utils import autocast_off, high_precision
from .base import Bijection

__all__ = ["InvertibleConv1x1", "apply_1x1"]


def apply_1x1(weight: Tensor, y: Tensor) -> Tensor:
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

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import InvertibleConv1x1
        >>> _ = torch.manual_seed(0)
        >>> conv = InvertibleConv1x1(4)
        >>> y = torch.randn(2, 4, 8, 8)
        >>> z, logdet = conv(y)
        >>> z.shape, logdet.shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> torch.allclose(conv.inverse(z), y, atol=1e-5)
        True
        >>> weight, logabsdet = conv.weight_and_logabsdet()  # LU: log|det W| without slogdet
        >>> torch.allclose(logabsdet, torch.linalg.slogdet(weight)[1], atol=1e-5)
        True
    """

    def __init__(self, num_channels: int, lu: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.lu = lu
        self._inverse_cache: tuple[tuple, Tensor] | None = None  # (key, W^-1), see inverse_weight()
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

    def _cache_key(self, dtype: torch.dtype) -> tuple:
        """What the inverse depends on: every tensor's identity, in-place version, dtype and device."""
        tensors = [*self.parameters(), *self.buffers()]
        return (dtype, *((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors))

    def inverse_weight(self, dtype: torch.dtype | None = None) -> Tensor:
        """$W^{-1}$ ``[C, C]`` in ``dtype`` (default: at least float32); cached in eval mode without gradients.

        The cache is used only when no gradient can flow through $W^{-1}$ (eval mode, and
        gradients disabled or no parameter requiring them) and outside ``torch.compile``; it is
        recomputed when any parameter or buffer changed since, and dropped in training mode.
        """
        ref = self.weight if not self.lu else self.lower
        dtype = dtype or high_precision(ref.dtype)
        cacheable = (
            not self.training
            and not torch.compiler.is_compiling()
            and not (torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters()))
        )
        if not cacheable:
            self._inverse_cache = None
            return self._inverse(dtype)
        key = self._cache_key(dtype)
        if self._inverse_cache is None or self._inverse_cache[0] != key:
            self._inverse_cache = (key, self._inverse(dtype).detach())
        return self._inverse_cache[1]

    def _inverse(self, dtype: torch.dtype) -> Tensor:
        """$W^{-1}$ ``[C, C]`` in ``dtype``, computed now (autocast off)."""
        weight, _ = self.weight_and_logabsdet()
        with autocast_off(weight):
            return torch.linalg.inv(weight.to(dtype))

    def train(self, mode: bool = True) -> InvertibleConv1x1:
        """Switch mode; entering training mode drops the cached inverse."""
        if mode:
            self._inverse_cache = None
        return super().train(mode)

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
            z = apply_1x1(weight.to(dtype), y.to(dtype))  # [B, C, H, W]
        return z, (logabsdet * pixels).expand(y.shape[0])

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        ref = self.weight if not self.lu else self.lower
        dtype = torch.promote_types(high_precision(ref.dtype), z.dtype)
        inverse = self.inverse_weight(dtype)  # [C, C]
        with autocast_off(z):
            return apply_1x1(inverse, z.to(dtype))
