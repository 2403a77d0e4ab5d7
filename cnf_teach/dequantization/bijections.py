"""Bijections used inside the dequantizers: the noise flow and the maps into a value's region.

A learned dequantizer draws Gaussian noise $\\epsilon$, sends it through a conditional flow to
$w$, and maps $w$ into the region of the discrete value $y$:

- :class:`ConditionalAffine` and :class:`ConditionalNoiseFlow`: the flow $\\epsilon \\mapsto w$,
  conditioned on features of $y$ (and of $x$);
- :class:`SigmoidToBin`: $v = (y + \\sigma(w)) / K$, into the bin of $y$ (Ho et al. 2019, §3.1);
- :class:`HalfLineSoftplus`: $v = \\tfrac12 + \\mathrm{sign}(y - \\tfrac12)\\,\\mathrm{softplus}(w)$,
  into the half-line of a binary $y$ (the binary dequantization of eq. (8) of Winkler et al. 2019).

Each is a :class:`~cnf_teach.flows.base.Bijection` (``out, logdet = layer(x, h)``,
``x = layer.inverse(out, h)``): its log-determinant enters $\\log q$, and a dequantizer's
``log_prob`` inverts it. Their own file because they are flow layers, each with its own round
trip and log-determinant to check; the dequantizers (:mod:`cnf_teach.dequantization.learned`)
only compose them.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §3.2 (eq. 8).
    Ho, Chen, Srinivas, Duan, Abbeel. Flow++. ICML 2019, §3.1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..flows.base import Bijection, FlowSequence, Reverse
from ..flows.conv1x1 import InvertibleConv1x1
from ..flows.coupling import AffineCoupling
from ..flows.squeeze import Squeeze
from ..nets.coupling_nets import MLP, CouplingConvNet, zero_init_
from ..utils import high_precision, sum_except_batch, to_high_precision
from .checks import keep_in_bin

__all__ = ["ConditionalAffine", "ConditionalNoiseFlow", "HalfLineSoftplus", "SigmoidToBin"]


class SigmoidToBin(Bijection):
    """$w \\in \\mathbb{R} \\mapsto v = (y + \\sigma(w)) / K \\in (k/K, (k+1)/K)$, conditioned on the bin $y$.

    The last step of variational dequantization (Ho et al. 2019, §3.1): the flow's
    output $w$ is squashed into the unit interval and moved into bin $y$ of width
    $1/K$. ``h`` is the integer data $y$ itself (the bin index), shaped like ``w``.

    $\\log|\\det \\partial v / \\partial w|
    = \\sum_i \\left[\\log\\sigma(w_i) + \\log\\sigma(-w_i)\\right] - D \\log K$.

    Args:
        num_bins: $K$.
        eps: The inverse clamps the within-bin position to $[\\epsilon, 1 - \\epsilon]$.

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import SigmoidToBin
        >>> _ = torch.manual_seed(0)
        >>> to_bin = SigmoidToBin(num_bins=4)
        >>> y = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 0.0]])  # bin indices
        >>> w = torch.randn(2, 3)
        >>> v, logdet = to_bin(w, y)
        >>> bool(((v * 4).floor() == y).all()), logdet.shape  # each v in its bin [y/4, (y+1)/4)
        (True, torch.Size([2]))
        >>> torch.allclose(to_bin.inverse(v, y), w, atol=1e-5)
        True
    """

    def __init__(self, num_bins: int, eps: float = 1e-7) -> None:
        super().__init__()
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = num_bins
        self.eps = eps

    def forward(self, w: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if h is None or h.shape != w.shape:
            raise ValueError("SigmoidToBin needs the bin indices y (shaped like its input) as h")
        v = keep_in_bin((h + torch.sigmoid(w)) / self.num_bins, h, self.num_bins)
        log_du = -F.softplus(-w) - F.softplus(w)  # log sigma'(w)
        logdet = sum_except_batch(log_du) - w[0].numel() * math.log(self.num_bins)
        return v, logdet

    def inverse(self, v: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None or h.shape != v.shape:
            raise ValueError("SigmoidToBin needs the bin indices y (shaped like its input) as h")
        u = (v * self.num_bins - h).clamp(self.eps, 1 - self.eps)  # position inside the bin
        return torch.log(u) - torch.log1p(-u)


class HalfLineSoftplus(Bijection):
    """$w \\in \\mathbb{R} \\mapsto v = \\tfrac12 + \\mathrm{sign}(y - \\tfrac12)\\,\\mathrm{softplus}(w)$.

    The map of eq. (8) of Winkler et al. 2019: sends $w$ to the half-line of the binary
    value $y$, $(1/2, \\infty)$ for $y = 1$ and $(-\\infty, 1/2)$ for $y = 0$. ``h`` is the
    binary $y$, shaped like ``w``. $\\mathrm{softplus}' = \\sigma$, so

    $$\\log\\left|\\det \\frac{\\partial v}{\\partial w}\\right| = \\sum_i \\log\\sigma(w_i)
    = -\\sum_i \\mathrm{softplus}(-w_i).$$

    Args:
        threshold: The split point between the half-lines (the paper's $1/2$).

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import HalfLineSoftplus
        >>> _ = torch.manual_seed(0)
        >>> to_half_line = HalfLineSoftplus()
        >>> y = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # binary data
        >>> w = torch.randn(2, 3)
        >>> v, logdet = to_half_line(w, y)
        >>> torch.equal(v > 0.5, y.bool()), logdet.shape  # y = 1 -> v > 1/2, y = 0 -> v < 1/2
        (True, torch.Size([2]))
        >>> torch.allclose(to_half_line.inverse(v, y), w, atol=1e-5)
        True
    """

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def _sign(self, y: Tensor | None, like: Tensor) -> Tensor:
        if y is None or y.shape != like.shape:
            raise ValueError("HalfLineSoftplus needs the binary data y (shaped like its input) as h")
        return 2.0 * y.to(like.dtype) - 1.0  # sign(y - 1/2) for y in {0, 1}

    def forward(self, w: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        sign = self._sign(h, w)
        v = self.threshold + sign * F.softplus(w)
        # Rounding guard: for w below about -17 (float32) softplus(w) is smaller than the spacing of
        # floats at 1/2, and v would round onto the threshold itself; move it to the nearest float
        # on the correct side, so every sample keeps its half-line.
        t = torch.full_like(v, self.threshold)
        above, below = torch.nextafter(t, t + 1), torch.nextafter(t, t - 1)
        v = torch.where(sign > 0, torch.maximum(v, above), torch.minimum(v, below))
        return v, sum_except_batch(-F.softplus(-w))

    def inverse(self, v: Tensor, h: Tensor | None = None) -> Tensor:
        a = self._sign(h, v) * (v - self.threshold)  # = softplus(w) > 0
        a = a.clamp_min(torch.finfo(v.dtype).tiny)
        # softplus^{-1}(a) = log(expm1(a)), written as a + log(-expm1(-a)) to stay finite for large a.
        return a + torch.log(-torch.expm1(-a))


class ConditionalAffine(Bijection):
    """$w = \\mu(c) + e^{s(c)} \\odot \\epsilon$: an elementwise affine map whose parameters come from $c$.

    The first layer of a dequantizer flow, so that even a one-dimensional $q$ depends
    on $y$ and $x$ (couplings need two dimensions or more). The network's last layer
    starts at zero: the layer starts as the identity. $\\log|\\det| = \\sum s(c)$ with
    $s = 4\\tanh(r/4)$, a soft clamp of the log-scale to $(-4, 4)$.

    Args:
        channels: Channels (images ``[B, C, H, W]``) or features (vectors ``[B, D]``) of $\\epsilon$.
        cond_channels: Channels (or features) of $c$.
        hidden: Hidden width of the network.
        vector: Vectors rather than images.

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import ConditionalAffine
        >>> _ = torch.manual_seed(0)
        >>> layer = ConditionalAffine(channels=4, cond_channels=3, hidden=8)
        >>> eps, c = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8)
        >>> w, logdet = layer(eps, c)
        >>> torch.equal(w, eps), logdet.tolist()  # the last layer starts at zero: the identity
        (True, [0.0, 0.0])
        >>> torch.allclose(layer.inverse(w, c), eps, atol=1e-5)
        True
    """

    def __init__(self, channels: int, cond_channels: int, hidden: int = 64, vector: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.cond_channels = cond_channels
        if vector:
            self.net: nn.Module = MLP(cond_channels, 2 * channels, hidden=hidden)
        else:
            self.net = nn.Sequential(
                nn.Conv2d(cond_channels, hidden, 3, padding=1),
                nn.ReLU(),
                zero_init_(nn.Conv2d(hidden, 2 * channels, 3, padding=1)),
            )

    def _params(self, c: Tensor | None, like: Tensor) -> tuple[Tensor, Tensor]:
        if c is None:
            raise ValueError("ConditionalAffine needs conditioning features c")
        if like.shape[1] != self.channels:
            raise ValueError(f"ConditionalAffine was built for {self.channels} channels, got {tuple(like.shape)}")
        out = self.net(c).to(high_precision(like.dtype))  # [B, 2C, ...], float32 even if the net ran in bf16
        return out[:, 0::2], 4.0 * torch.tanh(out[:, 1::2] / 4.0)

    def forward(self, eps: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        eps = to_high_precision(eps)
        shift, log_s = self._params(h, eps)
        return shift + torch.exp(log_s) * eps, sum_except_batch(log_s)

    def inverse(self, w: Tensor, h: Tensor | None = None) -> Tensor:
        w = to_high_precision(w)
        shift, log_s = self._params(h, w)
        return (w - shift) * torch.exp(-log_s)


class ConditionalNoiseFlow(Bijection):
    """A single-scale conditional flow $\\epsilon \\mapsto w$: the body of a dequantizer $q(\\cdot \\mid y, h)$.

    :class:`ConditionalAffine`, then ``steps`` x (invertible 1x1 conv -> conditional
    affine coupling). Images are squeezed once before the steps (so that one-channel
    masks can be split) and unsqueezed after, the features $c$ with them. No actnorm:
    the input is standard normal noise already, so a data-dependent initialisation
    would have nothing to normalise. Vectors with $D = 1$ get the affine layer only.

    Unlike the model's flows this one runs noise -> sample in its ``forward``: sampling
    is what the bound needs, and the density of a sample comes with it.

    Args:
        channels: Channels $C$ (images) or features $D$ (vectors) of the data.
        cond_channels: Channels of the features $c$ (at the data's resolution).
        steps: Coupling steps.
        hidden: Hidden width of the coupling and affine networks.
        vector: Vectors ``[B, D]`` rather than images ``[B, C, H, W]``.

    Examples:
        >>> import torch
        >>> from cnf_teach.dequantization import ConditionalNoiseFlow
        >>> _ = torch.manual_seed(0)
        >>> flow = ConditionalNoiseFlow(channels=1, cond_channels=3, steps=2, hidden=8)
        >>> eps, c = torch.randn(2, 1, 8, 8), torch.randn(2, 3, 8, 8)  # noise, features
        >>> w, logdet = flow(eps, c)  # noise -> sample, with log|det dw/d eps|
        >>> w.shape, logdet.shape
        (torch.Size([2, 1, 8, 8]), torch.Size([2]))
        >>> torch.allclose(flow.inverse(w, c), eps, atol=1e-5)
        True
    """

    def __init__(self, channels: int, cond_channels: int, steps: int = 4, hidden: int = 64, vector: bool = False):
        super().__init__()
        self.vector = vector
        self.affine = ConditionalAffine(channels, cond_channels, hidden, vector)
        self.squeeze = Squeeze()
        layers: list[Bijection] = []
        if vector and channels >= 2:
            for _ in range(steps):
                layers += [
                    InvertibleConv1x1(channels),
                    AffineCoupling(channels, cond_channels, hidden, net="mlp", scale="exp_tanh"),
                    Reverse(channels),
                ]
        elif not vector:
            c4 = 4 * channels
            for _ in range(steps):
                layers += [
                    InvertibleConv1x1(c4),
                    AffineCoupling(
                        c4,
                        4 * cond_channels,
                        net_factory=lambda i, o: CouplingConvNet(i, o, hidden=hidden),
                        scale="exp_tanh",
                    ),
                ]
        self.steps = FlowSequence(layers)

    def forward(self, eps: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        w, logdet = self.affine(eps, h)
        if len(self.steps) == 0:
            return w, logdet
        if self.vector:
            w, ld = self.steps(w, h)
            return w, logdet + ld
        ws, _ = self.squeeze(w)  # [B, 4C, H/2, W/2]
        cs, _ = self.squeeze(h)  # [B, 4C_c, H/2, W/2]
        ws, ld = self.steps(ws, cs)
        return self.squeeze.inverse(ws), logdet + ld

    def inverse(self, w: Tensor, h: Tensor | None = None) -> Tensor:
        if len(self.steps) > 0:
            if self.vector:
                w = self.steps.inverse(w, h)
            else:
                ws, _ = self.squeeze(w)
                cs, _ = self.squeeze(h)
                w = self.squeeze.inverse(self.steps.inverse(ws, cs))
        return self.affine.inverse(w, h)
