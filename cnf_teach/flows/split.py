"""Split with a conditional split prior, written as a bijection.

In a multi-scale flow half of the channels leave after each level. With
$z = [z_0, z_1]$ the factored-out half gets the conditional split prior
(Winkler et al. 2019, §3.1):

$$p(z_1 \\mid z_0, x) = \\mathcal{N}(z_1; \\mu(z_0, h), \\sigma(z_0, h)).$$

We write it as a bijection onto a standard normal,
$\\epsilon = (z_1 - \\mu(z_0, h)) / \\sigma(z_0, h)$, $z_0$ unchanged, whose log-determinant
is $-\\sum\\log\\sigma(z_0, h)$. Then $\\log\\mathcal{N}(\\epsilon; 0, I) - \\sum\\log\\sigma$ equals
$\\log\\mathcal{N}(z_1; \\mu, \\sigma)$ exactly, and the layer fits the same
``z, logdet = layer(y, h)`` contract as every other (and is checked the same way).
Sampling with $\\epsilon \\sim \\mathcal{N}(0, \\tau^2 I)$ gives the split prior at temperature $\\tau$.

References:
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017 (multi-scale).
    Kingma, Dhariwal. Glow. NeurIPS 2018 (learned split prior).
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nets.coupling_nets import NetFactory, zero_init_
from ..utils import high_precision, to_high_precision
from .base import Bijection, check_condition, sum_except_batch

__all__ = ["SplitPrior"]


class SplitPrior(Bijection):
    """Conditional split prior as a bijection $[z_0, z_1] \\mapsto [z_0, \\epsilon]$.

    The first ``num_channels - num_channels // 2`` channels are $z_0$ (kept), the rest
    $z_1$ (factored out). A network maps ``cat(z_0, h)`` to $\\mu$ and $\\log\\sigma$ of
    $z_1$; its last layer starts at zero, so the split prior starts as $\\mathcal{N}(0, I)$.

    Args:
        num_channels: Channels of the input $[z_0, z_1]$.
        cond_channels: Channels of the conditioning features $h$ (0 = unconditional).
        hidden: Hidden channels of the default network.
        net_factory: Builds ``(in, out) -> nn.Module`` instead of the default
            conv3x3 - ReLU - zero-initialised conv3x3.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import SplitPrior
        >>> _ = torch.manual_seed(0)
        >>> split = SplitPrior(4, cond_channels=3, hidden=8)
        >>> y, h = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8)
        >>> z, logdet = split(y, h)
        >>> split.keep, torch.equal(z[:, :2], y[:, :2]), logdet.shape  # z_0 is kept as it is
        (2, True, torch.Size([2]))
        >>> torch.allclose(split.inverse(z, h), y, atol=1e-5)
        True
        >>> split.sample(y[:, :2], h, temperature=0.5).shape  # draw z_1 given z_0
        torch.Size([2, 4, 8, 8])
    """

    def __init__(
        self,
        num_channels: int,
        cond_channels: int = 0,
        hidden: int = 64,
        net_factory: NetFactory | None = None,
    ) -> None:
        super().__init__()
        if num_channels < 2:
            raise ValueError(f"SplitPrior needs at least 2 channels, got {num_channels}")
        self.num_channels = num_channels
        self.cond_channels = cond_channels
        self.keep = num_channels - num_channels // 2  # channels of z_0
        c_in, c_out = self.keep + cond_channels, 2 * (num_channels - self.keep)
        if net_factory is not None:
            self.net = net_factory(c_in, c_out)
        else:
            self.net = nn.Sequential(
                nn.Conv2d(c_in, hidden, 3, padding=1),
                nn.ReLU(),
                zero_init_(nn.Conv2d(hidden, c_out, 3, padding=1)),
            )

    def _check(self, y: Tensor, h: Tensor | None) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_channels:
            raise ValueError(
                f"SplitPrior was built for {self.num_channels} channels but got input of shape {tuple(y.shape)}"
            )
        check_condition(self, y, h, self.cond_channels)

    def params(self, z0: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """$\\mu(z_0, h)$ and $\\log\\sigma(z_0, h)$ of the factored-out half, each ``[B, C - keep, ...]``.

        The network may run in bf16 under autocast; its output comes back in (at least) float32.
        """
        out = self.net(z0 if h is None else torch.cat([z0, h.to(z0.dtype)], dim=1))
        out = out.to(high_precision(z0.dtype))
        mean, log_std = out.unflatten(1, (-1, 2)).unbind(2)  # out[:, 0::2], out[:, 1::2] as one view
        return mean, log_std

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """$[z_0, z_1] \\to [z_0, \\epsilon]$; ``logdet`` $= -\\sum\\log\\sigma(z_0, h)$."""
        self._check(y, h)
        y = to_high_precision(y)
        z0, z1 = y.split([self.keep, self.num_channels - self.keep], dim=1)
        mean, log_std = self.params(z0, h)
        eps = (z1 - mean) * torch.exp(-log_std)
        return torch.cat([z0, eps], dim=1), -sum_except_batch(log_std)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        """$[z_0, \\epsilon] \\to [z_0, \\mu + \\sigma\\epsilon]$."""
        self._check(z, h)
        z = to_high_precision(z)
        z0, eps = z.split([self.keep, self.num_channels - self.keep], dim=1)
        mean, log_std = self.params(z0, h)
        return torch.cat([z0, mean + torch.exp(log_std) * eps], dim=1)

    def sample(self, z0: Tensor, h: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """Draw $z_1 \\sim \\mathcal{N}(\\mu(z_0, h), (\\tau\\sigma)^2)$ and return $[z_0, z_1]$."""
        z0 = to_high_precision(z0)
        mean, log_std = self.params(z0, h)
        z1 = mean + temperature * torch.exp(log_std) * torch.randn_like(mean)
        return torch.cat([z0, z1], dim=1)
