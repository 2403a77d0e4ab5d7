"""A (conditional) RealNVP for vectors: the model of the 2D tutorials.

Layers of actnorm -> affine coupling -> reverse, on top of a prior. Conditioning
$x$ is embedded once, $h = g(x)$, and may enter in the two places the paper names
for vectors (Winkler et al. 2019, §3.1): the prior $\\mathcal{N}(z; \\mu(h), \\sigma(h))$
and the couplings $s(y_a, h), t(y_a, h)$. Each can be switched off, so a learner can
see what each kind of conditioning buys.

References:
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1, eq. (7).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..distributions import ConditionalGaussianPrior, StandardNormal
from ..flows.actnorm import ActNorm
from ..flows.base import FlowSequence, Reverse
from ..flows.coupling import AffineCoupling, ScaleFunction
from ..utils import check_finite

__all__ = ["VectorFlow"]


class VectorFlow(nn.Module):
    """$p(y \\mid x)$ for vectors $y \\in \\mathbb{R}^D$ (unconditional when ``cond_dim = 0``).

    Args:
        dim: $D$, at least 2.
        cond_dim: Dimension of $x$ (0 = unconditional).
        num_layers: Number of coupling layers.
        hidden: Hidden width of the coupling MLPs.
        feature_dim: Width of the embedding $h = g(x)$.
        condition_prior: Condition the prior on $h$.
        condition_coupling: Condition the couplings on $h$.
        actnorm: Put an actnorm before every coupling.
        scale: Scale parametrisation of the couplings (see :class:`AffineCoupling`).

    Examples:
        >>> import torch
        >>> from cnf_teach.toy import VectorFlow
        >>> _ = torch.manual_seed(0)
        >>> flow = VectorFlow(dim=2, cond_dim=1, num_layers=2, hidden=8, feature_dim=4)
        >>> y, x = torch.randn(2, 2), torch.randn(2, 1)
        >>> flow.log_prob(y, x).shape
        torch.Size([2])
        >>> flow.sample(x).shape  # one sample per row of x
        torch.Size([2, 2])
        >>> flow.log_prob(y)
        Traceback (most recent call last):
        ...
        ValueError: this VectorFlow is conditional: pass x of shape [B, 1]
    """

    def __init__(
        self,
        dim: int = 2,
        cond_dim: int = 0,
        num_layers: int = 6,
        hidden: int = 64,
        feature_dim: int = 16,
        condition_prior: bool = True,
        condition_coupling: bool = True,
        actnorm: bool = True,
        scale: ScaleFunction = "exp_tanh",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.cond_dim = cond_dim
        conditional = cond_dim > 0
        self.embed = (
            nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(), nn.Linear(hidden, feature_dim))
            if conditional
            else None
        )
        c_cpl = feature_dim if conditional and condition_coupling else 0
        layers: list[nn.Module] = []
        for _ in range(num_layers):
            if actnorm:
                layers.append(ActNorm(dim))
            layers.append(AffineCoupling(dim, c_cpl, hidden, net="mlp", scale=scale))
            layers.append(Reverse(dim))
        self.transform = FlowSequence(layers)
        self.cond_coupling = c_cpl > 0
        self.prior: nn.Module
        if conditional and condition_prior:
            self.prior = ConditionalGaussianPrior(dim, feature_dim, hidden, vector=True)
        else:
            self.prior = StandardNormal((dim,))

    def _features(self, x: Tensor | None, batch: int) -> Tensor | None:
        if self.embed is None:
            if x is not None:
                raise ValueError("this VectorFlow is unconditional (cond_dim=0) but x was given; pass x=None")
            return None
        if x is None:
            raise ValueError(f"this VectorFlow is conditional: pass x of shape [B, {self.cond_dim}]")
        if x.dim() == 1:
            x = x[:, None]
        if x.shape != (batch, self.cond_dim):
            raise ValueError(f"x must have shape [{batch}, {self.cond_dim}], got {tuple(x.shape)}")
        return self.embed(x)  # [B, feature_dim]

    def log_prob(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """$\\log p(y \\mid x)$ in nats, ``[B, D] -> [B]``. Implements eq. (7) of Winkler et al. 2019."""
        if y.dim() != 2 or y.shape[1] != self.dim:
            raise ValueError(f"y must have shape [B, {self.dim}], got {tuple(y.shape)}")
        check_finite("y", y)
        h = self._features(x, y.shape[0])
        z, logdet = self.transform(y, h if self.cond_coupling else None)
        if isinstance(self.prior, ConditionalGaussianPrior):
            return self.prior.log_prob(z, h) + logdet
        return self.prior.log_prob(z) + logdet

    def bits_per_dim(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """$-\\log_2 p(y \\mid x) / D$, ``[B]``."""
        return -self.log_prob(y, x) / (self.dim * math.log(2.0))

    @torch.no_grad()
    def sample(self, x: Tensor | None = None, temperature: float = 1.0, num_samples: int | None = None) -> Tensor:
        """One sample per row of ``x`` (or ``num_samples`` when unconditional), ``[B, D]``."""
        if x is not None:
            batch = x.shape[0]
        elif num_samples is not None:
            batch = num_samples
        else:
            raise ValueError("pass x (conditional) or num_samples (unconditional)")
        h = self._features(x, batch)
        if isinstance(self.prior, ConditionalGaussianPrior):
            z = self.prior.sample(h, temperature)
        else:
            z = self.prior.sample(batch, temperature)
        return self.transform.inverse(z, h if self.cond_coupling else None)
