"""Base densities of the flows: standard normal, diagonal Gaussian, conditional Gaussian prior.

The prior is where a conditional flow's first kind of conditioning enters
(Winkler et al. 2019, §3.1): $p(z \\mid x) = \\mathcal{N}(z; \\mu(h), \\sigma(h))$ with
$h = g(x)$. Every density here samples at a *temperature* $\\tau$, drawing
$z = \\mu + \\tau\\,\\sigma \\odot \\epsilon$ with $\\epsilon \\sim \\mathcal{N}(0, I)$; $\\tau = 0$
returns the mean, which gives the deterministic $\\tau = 0$ super-resolution samples of the
paper's Fig. 3 and Fig. 7 (§5.1.1, Appendix B); the flow's image of the latents' mean is not
in general the most likely $y$.

Densities are evaluated in (at least) float32: under autocast the prior networks may run
in bf16, but $z$, $\\mu$, $\\log\\sigma$ and the log-density are cast up before they meet.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1, eq. (7).
    Kingma, Dhariwal. Glow. NeurIPS 2018 (temperature, zero-initialised priors).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .nets.coupling_nets import NetFactory, zero_init_
from .utils import check_condition, high_precision, sum_except_batch, to_high_precision

__all__ = [
    "LOG_2PI",
    "gaussian_log_prob",
    "StandardNormal",
    "DiagonalGaussian",
    "ConditionalGaussianPrior",
]

LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor | float = 0.0, log_std: Tensor | float = 0.0) -> Tensor:
    """$\\log \\mathcal{N}(z; \\mu, \\sigma)$ summed over all but the batch dimension.

    Args:
        z: Points, ``[B, ...]``.
        mean: $\\mu$, broadcastable to ``z``.
        log_std: $\\log \\sigma$, broadcastable to ``z``.

    Returns:
        Log-density in nats, ``[B]``, in at least float32.
    """
    z = to_high_precision(z)
    mean = torch.as_tensor(mean, dtype=z.dtype, device=z.device)
    log_std = torch.as_tensor(log_std, dtype=z.dtype, device=z.device)
    log_p = -0.5 * LOG_2PI - log_std - 0.5 * ((z - mean) * torch.exp(-log_std)) ** 2
    return sum_except_batch(log_p.expand_as(z))


class StandardNormal(nn.Module):
    """$\\mathcal{N}(0, I)$ over samples of shape ``event_shape``.

    Args:
        event_shape: Shape of one sample, e.g. ``(2,)`` or ``(C, H, W)``.

    Examples:
        >>> import torch
        >>> from cnf_teach.distributions import StandardNormal
        >>> _ = torch.manual_seed(0)
        >>> prior = StandardNormal((2,))
        >>> prior.sample(4).shape
        torch.Size([4, 2])
        >>> [round(v, 4) for v in prior.log_prob(torch.zeros(1, 2)).tolist()]  # -log(2 pi)
        [-1.8379]
        >>> torch.equal(prior.sample(3, temperature=0.0), torch.zeros(3, 2))  # tau = 0: the mean
        True
    """

    def __init__(self, event_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.register_buffer("_anchor", torch.zeros(()))  # follows .to(device)

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density in nats, ``[B, *event_shape] -> [B]``."""
        return gaussian_log_prob(z)

    def sample(self, num_samples: int, temperature: float = 1.0) -> Tensor:
        """Draw ``[num_samples, *event_shape]`` at temperature $\\tau$."""
        eps = torch.randn(num_samples, *self.event_shape, device=self._anchor.device, dtype=self._anchor.dtype)
        return temperature * eps


class DiagonalGaussian(nn.Module):
    """$\\mathcal{N}(\\mu, \\mathrm{diag}(\\sigma^2))$ with learnable $\\mu$, $\\log\\sigma$ (zero at start).

    Args:
        event_shape: Shape of one sample.
        learnable: Whether $\\mu$ and $\\log\\sigma$ are trained.

    Examples:
        >>> import torch
        >>> from cnf_teach.distributions import DiagonalGaussian
        >>> _ = torch.manual_seed(0)
        >>> gauss = DiagonalGaussian((2,))
        >>> [round(v, 4) for v in gauss.log_prob(torch.zeros(1, 2)).tolist()]  # starts as N(0, I)
        [-1.8379]
        >>> with torch.no_grad():
        ...     _ = gauss.mean.fill_(3.0)
        >>> gauss.sample(5).shape
        torch.Size([5, 2])
        >>> torch.equal(gauss.sample(2, temperature=0.0), torch.full((2, 2), 3.0))
        True
    """

    def __init__(self, event_shape: tuple[int, ...], learnable: bool = True) -> None:
        super().__init__()
        self.event_shape = tuple(event_shape)
        self.mean = nn.Parameter(torch.zeros(self.event_shape), requires_grad=learnable)
        self.log_std = nn.Parameter(torch.zeros(self.event_shape), requires_grad=learnable)

    def log_prob(self, z: Tensor) -> Tensor:
        """Log-density in nats, ``[B, *event_shape] -> [B]``."""
        return gaussian_log_prob(z, self.mean, self.log_std)

    def sample(self, num_samples: int, temperature: float = 1.0) -> Tensor:
        """Draw ``[num_samples, *event_shape]``: $\\mu + \\tau\\sigma\\epsilon$."""
        eps = torch.randn_like(self.mean.expand(num_samples, *self.event_shape))
        return self.mean + temperature * torch.exp(self.log_std) * eps


class ConditionalGaussianPrior(nn.Module):
    """The conditional prior $p(z \\mid x) = \\mathcal{N}(z; \\mu(h), \\sigma(h))$, $h = g(x)$.

    Implements the conditional base density of §3.1 of Winkler et al. 2019. A
    network maps the features $h$ ``[B, C_h, ...]`` to $\\mu$ and $\\log\\sigma$ of
    the same spatial size ``[B, C, ...]``. The network's last layer starts at zero,
    so the prior starts as $\\mathcal{N}(0, I)$.

    Args:
        channels: Channels $C$ of $z$.
        cond_channels: Channels $C_h$ of $h$.
        hidden: Hidden width of the default network.
        net_factory: Builds ``(C_h, 2C) -> nn.Module`` instead of the default 3x3
            conv - ReLU - zero-initialised 3x3 conv (or an MLP when ``vector=True``).
        vector: Inputs are vectors ``[B, C]`` rather than images.

    Examples:
        >>> import torch
        >>> from cnf_teach.distributions import ConditionalGaussianPrior
        >>> _ = torch.manual_seed(0)
        >>> prior = ConditionalGaussianPrior(4, cond_channels=3, hidden=8)
        >>> h = torch.randn(2, 3, 8, 8)  # features h = g(x)
        >>> z = prior.sample(h, temperature=0.5)
        >>> z.shape, prior.log_prob(z, h).shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> mean, log_std = prior.params(h)  # zero-initialised: the prior starts as N(0, I)
        >>> bool((mean == 0).all() and (log_std == 0).all())
        True
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        hidden: int = 64,
        net_factory: NetFactory | None = None,
        vector: bool = False,
    ) -> None:
        super().__init__()
        if cond_channels < 1:
            raise ValueError("ConditionalGaussianPrior needs cond_channels >= 1; use DiagonalGaussian otherwise")
        self.channels = channels
        self.cond_channels = cond_channels
        if net_factory is not None:
            self.net = net_factory(cond_channels, 2 * channels)
        elif vector:
            self.net = nn.Sequential(
                nn.Linear(cond_channels, hidden),
                nn.ReLU(),
                nn.Linear(hidden, hidden),
                nn.ReLU(),
                zero_init_(nn.Linear(hidden, 2 * channels)),
            )
        else:
            self.net = nn.Sequential(
                nn.Conv2d(cond_channels, hidden, 3, padding=1),
                nn.ReLU(),
                zero_init_(nn.Conv2d(hidden, 2 * channels, 3, padding=1)),
            )

    def params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """$\\mu(h)$ and $\\log\\sigma(h)$, each ``[B, C, ...]``, in at least float32."""
        out = self.net(h)
        out = out.to(high_precision(out.dtype))
        return out[:, 0::2], out[:, 1::2]

    def log_prob(self, z: Tensor, h: Tensor) -> Tensor:
        """$\\log \\mathcal{N}(z; \\mu(h), \\sigma(h))$ in nats, ``[B]``."""
        if z.shape[1] != self.channels:
            raise ValueError(
                f"ConditionalGaussianPrior was built for {self.channels} channels, got z of shape {tuple(z.shape)}"
            )
        check_condition(self, z, h, self.cond_channels)
        mean, log_std = self.params(h)
        return gaussian_log_prob(z, mean, log_std)

    def sample(self, h: Tensor, temperature: float = 1.0) -> Tensor:
        """Draw $z = \\mu(h) + \\tau\\,\\sigma(h)\\,\\epsilon$, shaped ``[B, C, *h.shape[2:]]``."""
        mean, log_std = self.params(h)
        return mean + temperature * torch.exp(log_std) * torch.randn_like(mean)
