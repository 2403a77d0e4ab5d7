"""Toy densities in 2D, unconditional and conditional, with exact log-densities where possible.

The conditional toy problem is the one the tutorials use to show why conditioning
must reach more than the mean: $p(y \\mid x)$ for $x \\in [-1, 1]$ is a mixture of two
Gaussians whose modes coincide at $x = -1$, then move apart and split as $x$ grows.
A factorized Gaussian $\\mathcal{N}(\\mu(x), \\sigma(x))$ can only blur the two modes
into one; a conditional flow can represent both (Winkler et al. 2019, §3.1: conditional
flows can model multimodal conditional distributions).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["two_moons", "eight_gaussians", "checkerboard", "ConditionalMixture2D", "TOY_DENSITIES"]


def two_moons(n: int, noise: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """``[n, 2]`` points on two interleaved half circles, centred and scaled to about unit variance."""
    t = math.pi * torch.rand(n, generator=generator)
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 2.0
    return pts + noise * 2.0 * torch.randn(n, 2, generator=generator)


def eight_gaussians(n: int, std: float = 0.15, generator: torch.Generator | None = None) -> Tensor:
    """``[n, 2]`` points from 8 Gaussians on a circle of radius 2."""
    k = torch.randint(0, 8, (n,), generator=generator)
    angle = k.float() * (2 * math.pi / 8)
    centres = 2.0 * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return centres + std * torch.randn(n, 2, generator=generator)


def checkerboard(n: int, generator: torch.Generator | None = None) -> Tensor:
    """``[n, 2]`` points uniform on the black squares of a 4x4 checkerboard on $[-2, 2]^2$."""
    x1 = 4 * torch.rand(n, generator=generator) - 2
    # x2 in [0, 1) or [-2, -1), then shifted up by one in every other column.
    x2 = torch.rand(n, generator=generator) - 2 * torch.randint(0, 2, (n,), generator=generator).float()
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], dim=1)


#: Unconditional toy samplers by name: ``TOY_DENSITIES[name](n) -> [n, 2]``.
TOY_DENSITIES = {"two_moons": two_moons, "eight_gaussians": eight_gaussians, "checkerboard": checkerboard}


class ConditionalMixture2D:
    """$p(y \\mid x) = \\tfrac12 \\mathcal{N}(y; m_+(x), s^2 I) + \\tfrac12 \\mathcal{N}(y; m_-(x), s^2 I)$.

    The modes are $m_\\pm(x) = (\\pm d(x), x)$ with separation $d(x) = \\text{spread}\\,(x + 1)/2$:
    one mode at $x = -1$, two well separated modes at $x = 1$; both move up with $x$.
    Because it is a Gaussian mixture, :meth:`log_prob` is exact, so a learned model
    can be scored against the truth.

    Args:
        spread: Half the distance between the modes at $x = 1$.
        std: Standard deviation $s$ of each mode.

    Examples:
        >>> import torch
        >>> from cnf_teach.data import ConditionalMixture2D
        >>> target = ConditionalMixture2D(spread=1.5, std=0.25)
        >>> g = torch.Generator().manual_seed(0)
        >>> x = target.sample_x(4, generator=g)
        >>> y = target.sample(x, generator=g)
        >>> x.shape, y.shape, target.log_prob(y, x).shape
        (torch.Size([4, 1]), torch.Size([4, 2]), torch.Size([4]))
        >>> target.means(torch.tensor([1.0]))[0].tolist()  # the mode m_+ at x = 1
        [[1.5, 1.0]]
    """

    def __init__(self, spread: float = 1.5, std: float = 0.25) -> None:
        self.spread = spread
        self.std = std

    def means(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The two modes $m_+(x), m_-(x)$, each ``[B, 2]``, for ``x`` of shape ``[B, 1]`` or ``[B]``."""
        x = x.reshape(-1)
        d = self.spread * (x + 1) / 2
        return torch.stack([d, x], dim=1), torch.stack([-d, x], dim=1)

    def sample_x(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[n, 1]`` conditioning values uniform on $[-1, 1]$."""
        return 2 * torch.rand(n, 1, generator=generator) - 1

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One $y \\sim p(y \\mid x)$ per row of ``x``: ``[B, 1] -> [B, 2]``."""
        m_plus, m_minus = self.means(x)
        pick = (torch.rand(len(m_plus), 1, generator=generator) < 0.5).to(m_plus.dtype)
        centre = pick * m_plus + (1 - pick) * m_minus
        return centre + self.std * torch.randn(centre.shape, generator=generator, dtype=centre.dtype)

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        """Exact $\\log p(y \\mid x)$ in nats, ``[B]``."""
        m_plus, m_minus = self.means(x.to(y.dtype))
        const = -math.log(2 * math.pi) - 2 * math.log(self.std)

        def comp(m: Tensor) -> Tensor:
            return const - 0.5 * ((y - m) ** 2).sum(dim=1) / self.std**2

        return torch.logsumexp(torch.stack([comp(m_plus), comp(m_minus)]), dim=0) - math.log(2)
