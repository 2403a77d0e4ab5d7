"""Dequantization: continuous flows as lower bounds on the likelihood of discrete data.

A flow has a density $p(v)$ over $\\mathbb{R}^D$; images and masks are discrete. Give
each discrete value $y$ a region $\\mathcal{V}(y)$ of $\\mathbb{R}^D$ (regions disjoint),
define $P(y) = \\int_{\\mathcal{V}(y)} p(v)\\,dv$, and draw noise $v \\sim q(v \\mid y)$ with
support in $\\mathcal{V}(y)$. Then, by Jensen's inequality (eqs. (2)-(5) of Winkler et
al. 2019),

$$\\log P(y) = \\log \\mathbb{E}_{q(v \\mid y)}\\left[\\frac{p(v)}{q(v \\mid y)}\\right]
\\ge \\mathbb{E}_{q(v \\mid y)}\\left[\\log p(v) - \\log q(v \\mid y)\\right],$$

with equality when $q(v \\mid y) = p(v) / P(y)$ on $\\mathcal{V}(y)$. Three choices of $q$:

- :class:`UniformDequantization` (Theis et al. 2016): bin $k$ of $K$ is
  $[k/K, (k+1)/K)$ and $q$ is uniform on it, $\\log q = D \\log K$.
- :class:`VariationalDequantization` (Ho et al. 2019, Flow++): $q$ is a conditional flow
  on the same bins, $v = (y + \\sigma(w)) / K$ with $w$ from a flow of Gaussian noise.
- :class:`BinaryDequantization`, the paper's own (§3.2, eq. (8)): for $y \\in \\{0, 1\\}$
  the regions are the half-lines $v < 1/2$ and $v > 1/2$, and
  $v = 1/2 + \\mathrm{sign}(y - 1/2)\\,\\mathrm{softplus}(w)$ with $w$ from a single-scale
  conditional flow of Gaussian noise.

Every dequantizer answers ``v, log_q = deq(y, h)``: ``v`` a sample shaped like ``y``,
``log_q`` ``[B]`` its log-density $\\log q(v \\mid y)$ in nats with every rescaling
included, so that ``log p_model(v) - log_q`` is a one-sample (unbiased) estimate of a
lower bound on $\\log P(y)$.
:func:`dequantized_log_likelihood` averages such bounds, or forms the tighter
importance-weighted bound (Burda et al. 2016; Hoogeboom et al. 2020) from $S > 1$ samples.

Precision and validation: noise, samples and log-densities are computed in (at least)
float32 under any autocast (only the networks may run in bf16; a bin of 8-bit data is
narrower than bf16 resolves). The input checks (:func:`check_discrete`,
:func:`check_binary`) cost one host sync each and are skipped inside ``torch.compile``;
validate the data on the loader's side there.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §2.1 (eqs. 2-5) and §3.2 (eq. 8).
    Theis, van den Oord, Bethge. A note on the evaluation of generative models. ICLR 2016.
    Ho, Chen, Srinivas, Duan, Abbeel. Flow++. ICML 2019, §3.1.
    Burda, Grosse, Salakhutdinov. Importance Weighted Autoencoders. ICLR 2016.
    Hoogeboom, Cohen, Tomczak. Learning Discrete Distributions by Dequantization. 2020.

Length: about 600 lines; the three dequantizers of the course (uniform, variational, binary) and
the bound they share, kept together so they can be compared line by line. A package with one
module each is the natural next step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .distributions import gaussian_log_prob
from .flows.base import Bijection, FlowSequence, Reverse
from .flows.conv1x1 import InvertibleConv1x1
from .flows.coupling import AffineCoupling
from .flows.squeeze import Squeeze
from .nets.coupling_nets import MLP, CouplingConvNet, zero_init_
from .utils import high_precision, is_compiling, sum_except_batch, to_high_precision

__all__ = [
    "BinaryDequantization",
    "ConditionalAffine",
    "ConditionalNoiseFlow",
    "HalfLineSoftplus",
    "SigmoidToBin",
    "UniformDequantization",
    "VariationalDequantization",
    "check_binary",
    "check_discrete",
    "dequantized_log_likelihood",
]


# --- input checks -----------------------------------------------------------------------------
def check_discrete(y: Tensor, num_bins: int, name: str = "y") -> None:
    """Raise ``ValueError`` unless ``y`` holds integers in $\\{0, \\dots, K-1\\}$.

    One host sync when the data are valid (none inside ``torch.compile``, where the check
    is skipped); the diagnosis of what is wrong runs only after it failed.

    Args:
        y: Discrete data, any shape, integer or float dtype.
        num_bins: $K$.
        name: Name used in the message.
    """
    if y.dim() < 2:
        raise ValueError(f"{name} must be batched, [B, D] or [B, C, H, W]; got shape {tuple(y.shape)}")
    if is_compiling():
        return
    ok = (y >= 0) & (y <= num_bins - 1)
    if y.is_floating_point():
        ok = ok & (y == torch.round(y))  # NaN fails every comparison, inf fails the range
    if bool(ok.all()):
        return
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        bad = (~torch.isfinite(y)).sum().item()
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); clean the input (e.g. torch.nan_to_num) "
            "or check the data pipeline before computing a likelihood"
        )
    if y.is_floating_point() and not torch.equal(y, torch.round(y)):
        raise ValueError(
            f"{name} must hold integers in {{0, ..., {num_bins - 1}}} (bin indices), but it has non-integer "
            f"values; pass the raw k-bit data (e.g. uint8 pixels), not data already scaled to [0, 1]"
        )
    lo, hi = y.min().item(), y.max().item()
    raise ValueError(
        f"{name} must lie in {{0, ..., {num_bins - 1}}} for num_bins={num_bins}, got values in [{lo:g}, {hi:g}]; "
        f"build the dequantizer with the data's number of levels (256 for 8-bit, 2 for masks)"
    )


def check_binary(y: Tensor, name: str = "y") -> None:
    """Raise ``ValueError`` unless every entry of ``y`` is exactly 0 or 1 (one host sync; skipped when compiling)."""
    if y.dim() < 2:
        raise ValueError(f"{name} must be batched, [B, D] or [B, C, H, W]; got shape {tuple(y.shape)}")
    if is_compiling():
        return
    if not bool(((y == 0) | (y == 1)).all()):
        bad = y[(y != 0) & (y != 1)]
        raise ValueError(
            f"binary dequantization needs exactly binary {name} (every entry 0 or 1), but {bad.numel()} "
            f"entries are not (e.g. {bad.flatten()[0].item():g}); threshold the mask first, e.g. (y > 0.5).float()"
        )


def _keep_in_bin(v: Tensor, y: Tensor, num_bins: int) -> Tensor:
    """Clamp $v$ into $[y/K, (y+1)/K)$ *in floating point*.

    $(y + u)/K$ with $u < 1$ can round up to $(y+1)/K$ (in float32, $255 + u$ rounds to 256
    for $u > 1 - 2^{-17}$); such a sample would sit in the next bin. The clamp moves it
    to the largest float below the edge and changes nothing else.
    """
    lo = y / num_bins
    hi = (y + 1) / num_bins
    return torch.minimum(torch.maximum(v, lo), torch.nextafter(hi, hi - 1))


# --- bijections used inside the dequantizers -----------------------------------------------------
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
        v = _keep_in_bin((h + torch.sigmoid(w)) / self.num_bins, h, self.num_bins)
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


# --- the dequantizers -----------------------------------------------------------------------------
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
        v = _keep_in_bin((y + torch.rand_like(y)) / self.num_bins, y, self.num_bins)
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


# --- the bound -----------------------------------------------------------------------------------
def dequantized_log_likelihood(
    log_prob_fn: Callable[[Tensor], Tensor],
    dequantizer: nn.Module,
    y: Tensor,
    h: Tensor | None = None,
    num_samples: int = 1,
) -> Tensor:
    """A lower bound on $\\log P(y)$ of discrete data, in nats, ``[B]``.

    Implements eqs. (4)-(5) of Winkler et al. 2019. With $S$ samples $v_s \\sim q(v \\mid y)$
    and importance weights $\\log w_s = \\log p(v_s) - \\log q(v_s \\mid y)$:

    - $S = 1$: the variational bound $\\log p(v) - \\log q(v \\mid y)$, the training objective;
    - $S > 1$: the importance-weighted bound $\\log \\frac1S \\sum_s w_s$ (Burda et al. 2016),
      tighter, increasing in $S$, and equal to $\\log P(y)$ as $S \\to \\infty$; use it for
      evaluation.

    Args:
        log_prob_fn: $v \\mapsto \\log p(v)$ (``[B, ...] -> [B]``), e.g.
            ``lambda v: flow.log_prob(v, x)``.
        dequantizer: A module with ``v, log_q = dequantizer(y, h)``.
        y: Discrete data ``[B, ...]``.
        h: Conditioning features for the dequantizer, or ``None``.
        num_samples: $S \\ge 1$.

    Returns:
        The bound in nats per sample, ``[B]``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    log_w = []
    for _ in range(num_samples):
        v, log_q = dequantizer(y, h)
        log_w.append(log_prob_fn(v) - log_q)
    if num_samples == 1:
        return log_w[0]
    return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(num_samples)
