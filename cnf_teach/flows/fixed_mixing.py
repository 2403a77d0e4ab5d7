"""Fixed (non-learned) channel mixing between couplings, and the factory that picks one.

A coupling layer changes only half of its channels, so something must mix the channels
between two couplings. Glow (Kingma & Dhariwal 2018, §3.2 and Fig. 3) compares three ways:

- ``"reverse"``: reverse the channel order (RealNVP's alternation), :class:`~.base.Reverse`;
- ``"shuffle"``: a fixed random permutation, drawn once, :class:`~.base.Permute`;
- ``"learned"``: the invertible $1 \\times 1$ convolution, :class:`~.conv1x1.InvertibleConv1x1`.

This module adds a fourth, the fixed random rotation :class:`FixedRotation`: a $1 \\times 1$
convolution $z_{:, i, j} = Q y_{:, i, j}$ with an orthogonal $Q$ drawn once and never trained
(FrEIA's ``Fixed1x1Conv`` with a rotation). It mixes every channel into every other like the
learned convolution but is volume preserving, $\\log|\\det Q| = 0$, costs no gradient for its
weight and no assembly of $W$, and inverts by the transpose, $Q^{-1} = Q^\\top$.

All four are bijections with the log-determinant of eq. (1) of Winkler et al. 2019 (zero
for the three fixed ones). :func:`make_mixing` builds the one a :class:`~.multiscale.FlowStep`
asks for.

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ..utils import autocast_off, high_precision
from .base import Bijection, Permute, Reverse, zero_logdet
from .conv1x1 import InvertibleConv1x1, apply_1x1

__all__ = ["MIXINGS", "FixedRotation", "Mixing", "make_mixing"]

#: How a flow step mixes its channels between couplings.
Mixing = Literal["learned", "reverse", "shuffle", "rotation"]
MIXINGS: tuple[str, ...] = ("learned", "reverse", "shuffle", "rotation")


def random_rotation(num_channels: int, generator: torch.Generator | None = None) -> Tensor:
    """A random orthogonal matrix ``[C, C]`` with $\\det = +1$, uniform (Haar) over rotations.

    The QR decomposition of a Gaussian matrix, with the signs of $R$'s diagonal moved into $Q$
    (which makes $Q$ Haar-distributed), and one column negated if needed so that $\\det Q = 1$.
    """
    q, r = torch.linalg.qr(torch.randn(num_channels, num_channels, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))  # [C, C], column j times sign(r_jj)
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


class FixedRotation(Bijection):
    """A fixed random rotation of the channels at every pixel: a $1 \\times 1$ convolution that is not trained.

    $z_{:, i, j} = Q y_{:, i, j}$ with $Q$ orthogonal ($Q^\\top Q = I$, $\\det Q = 1$), so
    $\\log|\\det \\partial z / \\partial y| = 0$ and $y = Q^\\top z$. $Q$ is a buffer: it is saved
    with the model, moves with it, and gets no gradient. Works on images ``[B, C, H, W]`` and
    on vectors ``[B, C]``. Like :class:`~.conv1x1.InvertibleConv1x1` it computes in at least
    float32 with autocast switched off; $Q$ is kept in float64 and rounded to the input's
    precision when used.

    Implements eq. (1) of Winkler et al. 2019, the change of variables, for a volume-preserving
    linear map: its log-determinant term is zero.

    Args:
        num_channels: Channels $C$.
        generator: Optional random generator for $Q$.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import FixedRotation
        >>> _ = torch.manual_seed(0)
        >>> rotation = FixedRotation(4)
        >>> y = torch.randn(2, 4, 8, 8)
        >>> z, logdet = rotation(y)
        >>> z.shape, logdet.tolist()  # volume preserving
        (torch.Size([2, 4, 8, 8]), [0.0, 0.0])
        >>> torch.allclose(rotation.inverse(z), y, atol=1e-5)
        True
        >>> torch.allclose(z.norm(dim=1), y.norm(dim=1), atol=1e-5)  # a rotation keeps lengths
        True
        >>> sum(p.numel() for p in rotation.parameters())  # nothing to train
        0
    """

    def __init__(self, num_channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.num_channels = num_channels
        # Q in float64, [C, C]: rounded to the input's precision at use, so that in float64 it is
        # orthogonal to float64's resolution (Q^T is then its inverse and log|det Q| = 0 holds there too).
        self.register_buffer("weight", random_rotation(num_channels, generator))

    def _check(self, y: Tensor) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_channels:
            raise ValueError(
                f"FixedRotation was built for {self.num_channels} channels but got input of shape "
                f"{tuple(y.shape)}; build it with num_channels={y.shape[1] if y.dim() > 1 else '?'}"
            )

    def _matrix(self, y: Tensor, transpose: bool) -> tuple[Tensor, torch.dtype]:
        dtype = high_precision(y.dtype)  # float32, or float64 for float64 inputs
        weight = self.weight.to(dtype)
        return (weight.T if transpose else weight), dtype

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        weight, dtype = self._matrix(y, transpose=False)
        with autocast_off(y):
            z = apply_1x1(weight, y.to(dtype))  # [B, C, H, W]
        return z, zero_logdet(y)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        weight, dtype = self._matrix(z, transpose=True)  # Q^-1 = Q^T
        with autocast_off(z):
            return apply_1x1(weight, z.to(dtype))


def make_mixing(mixing: Mixing, channels: int, lu: bool = True) -> Bijection:
    """The channel mixing of a flow step: ``"learned"`` (1x1 conv), ``"reverse"``, ``"shuffle"`` or ``"rotation"``.

    Args:
        mixing: Which layer, see the module docstring.
        channels: Channels $C$ it mixes.
        lu: LU parametrisation of the learned 1x1 convolution (ignored by the fixed layers).

    Examples:
        >>> from cnf_teach.flows.fixed_mixing import make_mixing
        >>> [type(make_mixing(m, 4)).__name__ for m in ("learned", "reverse", "shuffle", "rotation")]
        ['InvertibleConv1x1', 'Reverse', 'Permute', 'FixedRotation']
        >>> make_mixing("swap", 4)
        Traceback (most recent call last):
        ...
        ValueError: mixing must be one of 'learned', 'reverse', 'shuffle', 'rotation', got 'swap'
    """
    if mixing == "learned":
        return InvertibleConv1x1(channels, lu=lu)
    if mixing == "reverse":
        return Reverse(channels)
    if mixing == "shuffle":
        return Permute.random(channels)
    if mixing == "rotation":
        return FixedRotation(channels)
    raise ValueError(f"mixing must be one of {', '.join(repr(m) for m in MIXINGS)}, got {mixing!r}")
