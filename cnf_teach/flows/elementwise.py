"""Elementwise bijections: the change of variables one dimension at a time.

An elementwise map $z_i = f(y_i)$ has a diagonal Jacobian, so
$\\log|\\det \\partial z/\\partial y| = \\sum_i \\log|f'(y_i)|$. These are the first
flows a learner meets (eq. (1) of Winkler et al. 2019): an affine map that moves
and stretches a density, and the sigmoid / logit pair, a nonlinear monotone map
that visibly warps it.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, eq. (1).
    Papamakarios et al. Normalizing Flows for Probabilistic Modeling and Inference. JMLR 2021.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import Bijection, sum_except_batch

__all__ = ["ElementwiseAffine", "Sigmoid", "Logit"]


class ElementwiseAffine(Bijection):
    """$z = (y - b) \\cdot e^{-s}$ with learnable shift $b$ and log-scale $s$.

    The parameters have the shape ``shape`` and broadcast against the input's
    non-batch dimensions (e.g. ``(2,)`` for 2D points, ``(C, 1, 1)`` per channel).
    Parametrising the scale by its log keeps it positive, and the log-determinant
    is then simply $-\\sum s$ (times the number of positions it is broadcast over).

    Args:
        shape: Parameter shape, broadcastable to one sample.
        shift: Initial $b$.
        log_scale: Initial $s$.

    Examples:
        >>> import math
        >>> import torch
        >>> from cnf_teach.flows import ElementwiseAffine
        >>> layer = ElementwiseAffine((2,), shift=1.0, log_scale=math.log(2.0))
        >>> y = torch.tensor([[1.0, 3.0], [5.0, 7.0]])
        >>> z, logdet = layer(y)
        >>> torch.allclose(z, (y - 1) / 2)
        True
        >>> [round(v, 4) for v in logdet.tolist()]  # -2 log 2 per sample
        [-1.3863, -1.3863]
        >>> torch.allclose(layer.inverse(z), y)
        True
    """

    def __init__(self, shape: tuple[int, ...], shift: float = 0.0, log_scale: float = 0.0) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.full(shape, float(shift)))
        self.log_scale = nn.Parameter(torch.full(shape, float(log_scale)))

    def _broadcast_count(self, y: Tensor) -> int:
        # How many entries of one sample share each parameter.
        return y[0].numel() // self.log_scale.numel()

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = (y - self.shift) * torch.exp(-self.log_scale)
        logdet = -self.log_scale.sum() * self._broadcast_count(y)
        return z, logdet.expand(y.shape[0])

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        return z * torch.exp(self.log_scale) + self.shift


class Sigmoid(Bijection):
    """$z = \\sigma(y) = 1/(1 + e^{-y})$, mapping $\\mathbb{R}$ onto $(0, 1)$.

    $\\log \\sigma'(y) = \\log\\sigma(y) + \\log\\sigma(-y) = -\\mathrm{softplus}(-y) - \\mathrm{softplus}(y)$,
    computed in that form because it never overflows.

    Args:
        eps: The inverse clamps its input to $[\\epsilon, 1-\\epsilon]$ so that the logit stays finite.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Sigmoid
        >>> _ = torch.manual_seed(0)
        >>> sigmoid = Sigmoid()
        >>> y = torch.randn(2, 3)
        >>> z, logdet = sigmoid(y)
        >>> bool(((z > 0) & (z < 1)).all()), logdet.shape
        (True, torch.Size([2]))
        >>> [round(v, 4) for v in sigmoid(torch.zeros(1, 1))[1].tolist()]  # log sigma'(0) = log(1/4)
        [-1.3863]
        >>> torch.allclose(sigmoid.inverse(z), y, atol=1e-5)
        True
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        z = torch.sigmoid(y)
        logdet = sum_except_batch(-F.softplus(-y) - F.softplus(y))
        return z, logdet

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        z = z.clamp(self.eps, 1 - self.eps)
        return torch.log(z) - torch.log1p(-z)


class Logit(Bijection):
    """$z = \\mathrm{logit}(y) = \\log y - \\log(1-y)$, mapping $(0, 1)$ onto $\\mathbb{R}$.

    The inverse of :class:`Sigmoid`: $\\log|\\mathrm{logit}'(y)| = -\\log y - \\log(1-y)$.
    Used to move data that lives in a box (pixels in $[0,1]$) to the real line,
    where a Gaussian prior makes sense (Dinh et al. 2017, §4.1).

    Args:
        eps: Inputs are clamped to $[\\epsilon, 1-\\epsilon]$ before the logit.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Logit, Sigmoid
        >>> _ = torch.manual_seed(0)
        >>> y = torch.rand(2, 1, 8, 8)  # pixels in (0, 1)
        >>> z, logdet = Logit()(y)
        >>> z.shape, logdet.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2]))
        >>> y_back, logdet_back = Sigmoid()(z)  # the sigmoid undoes it, log-determinants cancel
        >>> torch.allclose(y_back, y, atol=1e-6), torch.allclose(logdet + logdet_back, torch.zeros(2), atol=1e-3)
        (True, True)
    """

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = y.clamp(self.eps, 1 - self.eps)
        z = torch.log(y) - torch.log1p(-y)
        logdet = sum_except_batch(-torch.log(y) - torch.log1p(-y))
        return z, logdet

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        return torch.sigmoid(z)
