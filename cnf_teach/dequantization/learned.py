"""Learned dequantizers: $q(v \\mid y, h)$ is a conditional flow of Gaussian noise, trained with the model.

Both share one body, :class:`_FlowDequantizer`: an embedding $c = \\mathrm{embed}([y, h])$ of the
data (and of features $h$ of $x$), a
:class:`~cnf_teach.dequantization.bijections.ConditionalNoiseFlow` $\\epsilon \\mapsto w$
conditioned on $c$, and a last map of $w$ into the region of $y$. They differ only in three short
methods: the check of $y$, how $y$ enters the embedding, and that last map:

- :class:`VariationalDequantization` (Ho et al. 2019, Flow++): the bins of width $1/K$, through
  :class:`~cnf_teach.dequantization.bijections.SigmoidToBin`;
- :class:`BinaryDequantization`, the paper's own (§3.2, eq. (8)): for $y \\in \\{0, 1\\}$ the
  half-lines $v < 1/2$ and $v > 1/2$, through
  :class:`~cnf_teach.dequantization.bijections.HalfLineSoftplus`.

Both answer ``v, log_q = deq(y, h)`` and ``deq.log_prob(v, y, h)`` (by inverting the flow).
Kept in one file, with their shared body, so that the two can be read side by side.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §2.1 (eq. 5) and §3.2 (eq. 8).
    Ho, Chen, Srinivas, Duan, Abbeel. Flow++. ICML 2019, §3.1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..distributions import gaussian_log_prob
from ..flows.base import Bijection
from ..utils import high_precision, to_high_precision
from .bijections import ConditionalNoiseFlow, HalfLineSoftplus, SigmoidToBin
from .checks import check_binary, check_discrete

__all__ = ["BinaryDequantization", "VariationalDequantization"]


class _FlowDequantizer(nn.Module):
    """Shared part of the two learned dequantizers: features $c(y, h)$ and the noise flow."""

    def __init__(
        self,
        channels: int,
        cond_channels: int,
        steps: int,
        hidden: int,
        features: int,
        vector: bool,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.cond_channels = cond_channels
        self.vector = vector
        c_in = channels + cond_channels
        if vector:
            self.embed: nn.Module = nn.Sequential(
                nn.Linear(c_in, hidden), nn.ReLU(), nn.Linear(hidden, features), nn.ReLU()
            )
        else:
            self.embed = nn.Sequential(
                nn.Conv2d(c_in, hidden, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(hidden, features, 3, padding=1),
                nn.ReLU(),
            )
        self.flow = ConditionalNoiseFlow(channels, features, steps, hidden, vector)

    def _y_input(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def features(self, y: Tensor, h: Tensor | None) -> Tensor:
        """$c = \\mathrm{embed}([y, h])$: what the noise flow is conditioned on, at $y$'s resolution."""
        expected_dim = 2 if self.vector else 4
        if y.dim() != expected_dim or y.shape[1] != self.channels:
            kind = "[B, D]" if self.vector else "[B, C, H, W]"
            raise ValueError(
                f"{type(self).__name__} was built for {kind} data with {self.channels} channel(s), "
                f"got shape {tuple(y.shape)}"
            )
        if not self.vector and (y.shape[2] % 2 or y.shape[3] % 2):
            raise ValueError(
                f"{type(self).__name__} squeezes once: height and width must be even, got {tuple(y.shape)}"
            )
        inp = self._y_input(y)
        if self.cond_channels == 0:
            if h is not None:
                raise ValueError(f"{type(self).__name__} was built with cond_channels=0 but got h; pass h=None")
        else:
            if h is None:
                raise ValueError(f"{type(self).__name__} was built with cond_channels={self.cond_channels}; pass h")
            if h.shape[0] != y.shape[0] or h.shape[1] != self.cond_channels or h.shape[2:] != y.shape[2:]:
                raise ValueError(
                    f"{type(self).__name__}: h has shape {tuple(h.shape)}, expected "
                    f"[{y.shape[0]}, {self.cond_channels}, {', '.join(str(s) for s in y.shape[2:])}] "
                    "(features of x at the resolution of y)"
                )
            inp = torch.cat([inp, h.to(inp.dtype)], dim=1)
        return self.embed(inp)

    def _output_map(self) -> Bijection:
        raise NotImplementedError

    def _check(self, y: Tensor) -> None:
        raise NotImplementedError

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        ref = next(self.parameters())
        y = y.to(high_precision(ref.dtype))
        c = self.features(y, h)
        eps = torch.randn_like(y)  # [B, ...]
        w, ld_flow = self.flow(eps, c)
        v, ld_out = self._output_map()(w, y)
        # q(v) = N(eps) |d eps / d v| = N(eps) / (|dw/d eps| |dv/dw|)
        log_q = gaussian_log_prob(eps) - ld_flow - ld_out
        return v, log_q

    def log_prob(self, v: Tensor, y: Tensor, h: Tensor | None = None) -> Tensor:
        """$\\log q(v \\mid y, h)$ in nats, ``[B]``, for given $v$ inside $y$'s region (by inverting the flow)."""
        self._check(y)
        v = to_high_precision(v)
        y = y.to(v.dtype)
        c = self.features(y, h)
        out = self._output_map()
        w = out.inverse(v, y)
        eps = self.flow.inverse(w, c)
        _, ld_flow = self.flow(eps, c)
        _, ld_out = out(w, y)
        return gaussian_log_prob(eps) - ld_flow - ld_out


class VariationalDequantization(_FlowDequantizer):
    """Variational dequantization: $v = (y + \\sigma(w)) / K$ with $w$ from a conditional flow.

    Implements the variational bound of eq. (5) of Winkler et al. 2019 (Ho et al. 2019,
    §3.1): $q(u \\mid y, h)$ is a flow of Gaussian noise $\\epsilon$, conditioned on $y$ (and
    on features $h$ of $x$ when the model is conditional), squashed into $(0, 1)$ and
    placed in bin $y$:

    $$\\log q(v \\mid y) = \\log\\mathcal{N}(\\epsilon)
    - \\log\\left|\\det\\frac{\\partial w}{\\partial\\epsilon}\\right|
    - \\sum_i \\log\\sigma'(w_i) + D\\log K.$$

    Training $q$ jointly with the model tightens the bound: its optimum is
    $q(v \\mid y) = p(v) / P(y)$ on the bin, where the bound equals $\\log P(y)$.

    Args:
        channels: Channels $C$ of $y$ (or features $D$ when ``vector``).
        num_bins: $K$.
        cond_channels: Channels of the optional features $h$ of $x$ (0 = none).
        steps: Coupling steps of the noise flow.
        hidden: Hidden width of its networks.
        features: Channels of the embedding $c(y, h)$.
        vector: Data are vectors ``[B, D]`` rather than images ``[B, C, H, W]``.

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import VariationalDequantization
        >>> _ = torch.manual_seed(0)
        >>> deq = VariationalDequantization(channels=3, num_bins=256, steps=1, hidden=8, features=8)
        >>> y = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)  # 8-bit images
        >>> v, log_q = deq(y)  # one sample of q(v | y) and its log-density, in nats
        >>> bool(((v * 256).floor() == y).all()), log_q.shape  # each v in its bin
        (True, torch.Size([2]))
        >>> torch.allclose(deq.log_prob(v, y), log_q, atol=1e-3)
        True
    """

    def __init__(
        self,
        channels: int,
        num_bins: int = 256,
        cond_channels: int = 0,
        steps: int = 4,
        hidden: int = 64,
        features: int = 32,
        vector: bool = False,
    ) -> None:
        super().__init__(channels, cond_channels, steps, hidden, features, vector)
        self.num_bins = num_bins
        self.to_bin = SigmoidToBin(num_bins)

    def _check(self, y: Tensor) -> None:
        check_discrete(y, self.num_bins)

    def _y_input(self, y: Tensor) -> Tensor:
        return (2 * y + 1) / self.num_bins - 1  # bin centres in (-1, 1)

    def _output_map(self) -> Bijection:
        return self.to_bin


class BinaryDequantization(_FlowDequantizer):
    """Binary variational dequantization: $v = \\tfrac12 + \\mathrm{sign}(y - \\tfrac12)\\,\\mathrm{softplus}(w)$.

    Implements eq. (8) of Winkler et al. 2019 (§3.2). Uniform dequantization of a binary
    mask confines the model to densities on $[0, 1)$ with a cliff at every bin edge,
    which flows fit badly. Here each value owns a half-line instead: $y = 1$ the
    region $v > 1/2$, $y = 0$ the region $v < 1/2$. $w$ (the paper's $\\mathrm{NN}(z)$) comes
    from a single-scale conditional flow of Gaussian noise, conditioned on $y$ and on
    features $h$ of $x$; softplus sends it to the right half-line. Then

    $$\\log q(v \\mid y, x) = \\log\\mathcal{N}(\\epsilon)
    - \\log\\left|\\det\\frac{\\partial w}{\\partial\\epsilon}\\right|
    - \\sum_i \\log\\sigma(w_i),$$

    the last term being the softplus's log-derivative. The half-lines partition
    $\\mathbb{R}$, so $P(y) = \\int_{\\text{half-lines of } y} p(v)\\,dv$ is a proper distribution
    over $\\{0, 1\\}^D$ and ``log p(v) - log_q`` a lower bound on its log.

    Args:
        channels: Channels $C$ of the mask (or features $D$ when ``vector``).
        cond_channels: Channels of the optional features $h$ of $x$ (0 = none).
        steps: Coupling steps of the noise flow.
        hidden: Hidden width of its networks.
        features: Channels of the embedding $c(y, h)$.
        vector: Data are vectors ``[B, D]`` rather than images ``[B, C, H, W]``.

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import BinaryDequantization
        >>> _ = torch.manual_seed(0)
        >>> deq = BinaryDequantization(channels=1, cond_channels=3, steps=1, hidden=8, features=8)
        >>> y = (torch.rand(2, 1, 8, 8) > 0.5).float()  # binary masks
        >>> h = torch.randn(2, 3, 8, 8)  # features of x at the mask's resolution
        >>> v, log_q = deq(y, h)
        >>> torch.equal(v > 0.5, y.bool()), log_q.shape  # y = 1 -> v > 1/2, y = 0 -> v < 1/2
        (True, torch.Size([2]))
        >>> torch.allclose(deq.log_prob(v, y, h), log_q, atol=1e-3)
        True
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int = 0,
        steps: int = 4,
        hidden: int = 64,
        features: int = 32,
        vector: bool = False,
    ) -> None:
        super().__init__(channels, cond_channels, steps, hidden, features, vector)
        self.to_half_line = HalfLineSoftplus(0.5)

    def _check(self, y: Tensor) -> None:
        check_binary(y)

    def _y_input(self, y: Tensor) -> Tensor:
        return 2 * y - 1  # {-1, +1}

    def _output_map(self) -> Bijection:
        return self.to_half_line
