"""The multi-scale conditional flow of Winkler et al. 2019 (Glow's architecture, conditioned).

$L$ levels; each level squeezes, runs $K$ flow steps (actnorm -> 1x1 conv ->
conditional coupling), then factors out half of its channels through the
conditional split prior (not after the last level). What is left at the top gets
the conditional prior $\\mathcal{N}(z_L; \\mu(h_L), \\sigma(h_L))$. The conditioning
input $x$ enters through a conditioner $g$ that returns one feature map per level,
at that level's resolution, $h_l = g(x)_l$, shared by the level's couplings, its
split prior and (at the top) the prior. The log-likelihood (eq. (7)) is

$$\\log p(y \\mid x) = \\sum_l \\log p(\\epsilon_l) + \\log p(z_L \\mid h_L) + \\sum \\log|\\det J|.$$

Shapes for an input ``[B, C, H, W]``: level $l$ (from 0) works at
``[B, C_l, H / 2**(l+1), W / 2**(l+1)]`` with $C_0 = 4C$ and $C_{l+1} = 2 C_l$
(squeeze quadruples the channels that the previous split halved).

References:
    Kingma, Dhariwal. Glow. NeurIPS 2018.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1 (the
    conditional prior, split prior and coupling) and §5.1, "Implementation Details" (levels of
    $K$ steps, half factored out per level); the paper has no figure of this architecture.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from ..distributions import ConditionalGaussianPrior, gaussian_log_prob
from ..nets.coupling_nets import NetFactory
from ..utils import check_finite, to_high_precision
from .actnorm import ActNorm
from .base import Bijection, FlowSequence, zero_logdet
from .coupling import AdditiveCoupling, AffineCoupling, ScaleFunction
from .fixed_mixing import Mixing, make_mixing
from .split import SplitPrior
from .squeeze import Squeeze

__all__ = ["FlowStep", "MultiScaleFlow"]

#: Builds the normalisation layer of a flow step from its channel count.
NormFactory = Callable[[int], Bijection]


class FlowStep(FlowSequence):
    """One step of flow: actnorm -> invertible 1x1 conv -> (conditional) coupling.

    The 1x1 convolution is Glow's learned channel mixing; ``mixing`` swaps it for a fixed one
    (reverse, a random permutation or a random rotation, :mod:`cnf_teach.flows.fixed_mixing`),
    the comparison of Kingma & Dhariwal 2018, Fig. 3.

    Args:
        channels: Channels at this level.
        cond_channels: Channels of the conditioning features (0 = unconditional).
        hidden: Hidden channels of the coupling network.
        coupling: ``"affine"`` or ``"additive"``.
        lu: LU-decomposed 1x1 convolution.
        scale: Scale parametrisation of the affine coupling.
        norm_factory: Builds the normalisation layer (default :class:`ActNorm`).
        net_factory: Builds the coupling network (default: Table 6's conv net).
        mixing: ``"learned"`` (the invertible 1x1 convolution, default), ``"reverse"``,
            ``"shuffle"`` or ``"rotation"`` (fixed, not trained; log-det 0).

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import FlowStep
        >>> _ = torch.manual_seed(0)
        >>> step = FlowStep(4, cond_channels=3, hidden=8)
        >>> [type(layer).__name__ for layer in step.layers]
        ['ActNorm', 'InvertibleConv1x1', 'AffineCoupling']
        >>> y, h = torch.randn(2, 4, 8, 8), torch.randn(2, 3, 8, 8)
        >>> z, logdet = step(y, h)
        >>> z.shape, logdet.shape
        (torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> torch.allclose(step.inverse(z, h), y, atol=1e-5)
        True
        >>> [type(layer).__name__ for layer in FlowStep(4, hidden=8, mixing="rotation").layers]
        ['ActNorm', 'FixedRotation', 'AffineCoupling']
    """

    def __init__(
        self,
        channels: int,
        cond_channels: int = 0,
        hidden: int = 512,
        coupling: Literal["affine", "additive"] = "affine",
        lu: bool = True,
        scale: ScaleFunction = "sigmoid",
        norm_factory: NormFactory | None = None,
        net_factory: NetFactory | None = None,
        mixing: Mixing = "learned",
    ) -> None:
        norm = norm_factory(channels) if norm_factory is not None else ActNorm(channels)
        if coupling == "affine":
            cpl: Bijection = AffineCoupling(
                channels, cond_channels, hidden, net="conv", net_factory=net_factory, scale=scale
            )
        elif coupling == "additive":
            cpl = AdditiveCoupling(channels, cond_channels, hidden, net="conv", net_factory=net_factory)
        else:
            raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}")
        super().__init__([norm, make_mixing(mixing, channels, lu), cpl])


class MultiScaleFlow(nn.Module):
    """A conditional multi-scale flow $p(y \\mid x)$ with $L$ levels of $K$ steps.

    Args:
        in_channels: Channels of $y$.
        levels: $L$.
        steps: $K$, flow steps per level.
        conditioner: Module $g$ with ``g(x) -> [h_0, ..., h_{L-1}]``, feature map $h_l$
            of shape ``[B, cond_channels[l], H / 2**(l+1), W / 2**(l+1)]``; ``None`` for
            an unconditional flow.
        cond_channels: Channels of each $h_l$ (an int applies to every level).
        hidden: Hidden channels of the coupling networks.
        coupling: ``"affine"`` or ``"additive"``.
        lu: LU-decomposed 1x1 convolutions.
        scale: Scale parametrisation of affine couplings.
        prior_hidden: Hidden channels of the split and top prior networks.
        norm_factory: Builds each step's normalisation layer (default actnorm).
        net_factory: Builds each coupling network (default: Table 6's conv net).
        mixing: Channel mixing of every step: ``"learned"`` 1x1 convolutions (default, the
            paper's) or a fixed ``"reverse"``, ``"shuffle"`` or ``"rotation"``, see :class:`FlowStep`.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import MultiScaleFlow
        >>> from cnf_teach.nets import ConvConditioner
        >>> _ = torch.manual_seed(0)
        >>> g = ConvConditioner(in_channels=1, out_channels=4, levels=2, upscale=2, hidden=8)
        >>> flow = MultiScaleFlow(1, levels=2, steps=1, conditioner=g, cond_channels=4, hidden=8, prior_hidden=8)
        >>> x, y = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 8, 8)  # low-resolution x, high-resolution y
        >>> flow.log_prob(y, x).shape
        torch.Size([2])
        >>> [tuple(z.shape) for z in flow.transform(y, flow.features(x))[0]]  # eps_0 and the top z_L
        [(2, 2, 4, 4), (2, 8, 2, 2)]
        >>> flow.sample(x, temperature=0.5).shape
        torch.Size([2, 1, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        levels: int = 2,
        steps: int = 8,
        conditioner: nn.Module | None = None,
        cond_channels: int | Sequence[int] = 0,
        hidden: int = 512,
        coupling: Literal["affine", "additive"] = "affine",
        lu: bool = True,
        scale: ScaleFunction = "sigmoid",
        prior_hidden: int = 64,
        norm_factory: NormFactory | None = None,
        net_factory: NetFactory | None = None,
        mixing: Mixing = "learned",
    ) -> None:
        super().__init__()
        if levels < 1 or steps < 1:
            raise ValueError(f"need levels >= 1 and steps >= 1, got levels={levels}, steps={steps}")
        if isinstance(cond_channels, int):
            cond_channels = [cond_channels] * levels
        cond_channels = list(cond_channels)
        if len(cond_channels) != levels:
            raise ValueError(f"cond_channels has {len(cond_channels)} entries, need one per level ({levels})")
        if conditioner is not None and min(cond_channels) < 1:
            raise ValueError("a conditioner was given, so cond_channels must be >= 1 at every level")
        if conditioner is None and max(cond_channels) > 0:
            raise ValueError("cond_channels > 0 needs a conditioner g(x) -> [h_0, ..., h_{L-1}]")
        self.in_channels = in_channels
        self.levels = levels
        self.conditioner = conditioner
        self.cond_channels = cond_channels
        self.squeeze = Squeeze()
        self.steps = nn.ModuleList()
        self.splits = nn.ModuleList()
        channels = in_channels
        for level in range(levels):
            channels *= 4  # squeeze
            self.steps.append(
                FlowSequence(
                    FlowStep(
                        channels, cond_channels[level], hidden, coupling, lu, scale, norm_factory, net_factory, mixing
                    )
                    for _ in range(steps)
                )
            )
            if level < levels - 1:
                split = SplitPrior(channels, cond_channels[level], prior_hidden)
                self.splits.append(split)
                channels = split.keep
        self.top_channels = channels
        self.prior = (
            ConditionalGaussianPrior(channels, cond_channels[-1], prior_hidden) if conditioner is not None else None
        )

    # --- validation -------------------------------------------------------------------------
    def _check_input(self, y: Tensor) -> None:
        if y.dim() != 4:
            raise ValueError(f"expected images [B, C, H, W], got shape {tuple(y.shape)}")
        if y.shape[1] != self.in_channels:
            raise ValueError(
                f"the flow was built for {self.in_channels} channel(s) but y has {y.shape[1]} "
                f"(shape {tuple(y.shape)}); build it with in_channels={y.shape[1]} or convert the images"
            )
        m = 2**self.levels
        if y.shape[2] % m or y.shape[3] % m:
            raise ValueError(
                f"spatial size {y.shape[2]}x{y.shape[3]} is not divisible by 2**levels = {m}; "
                f"pad or crop the images to a multiple of {m}"
            )

    def features(self, x: Tensor | None) -> list[Tensor | None]:
        """The conditioning feature maps $[h_0, \\dots, h_{L-1}] = g(x)$ (``None`` when unconditional)."""
        if self.conditioner is None:
            if x is not None:
                raise ValueError("this flow is unconditional (no conditioner) but x was given; pass x=None")
            return [None] * self.levels
        if x is None:
            raise ValueError("this flow is conditional: pass the conditioning input x")
        hs = list(self.conditioner(x))
        if len(hs) != self.levels:
            raise ValueError(f"the conditioner returned {len(hs)} feature maps, need one per level ({self.levels})")
        return hs

    # --- the bijection ----------------------------------------------------------------------
    def transform(self, y: Tensor, hs: Sequence[Tensor | None]) -> tuple[list[Tensor], Tensor]:
        """Data to latents: ``y -> ([eps_0, ..., eps_{L-2}, z_L], logdet)``.

        ``eps_l`` is what level $l$ factored out (already standardised by its split
        prior), ``z_L`` what reaches the top prior, ``logdet`` ``[B]`` the sum of all
        log-determinants (the split priors' $-\\sum\\log\\sigma$ included).
        """
        self._check_input(y)
        y = to_high_precision(y)  # the bijections compute in float32 even under autocast
        logdet = zero_logdet(y)  # [B]
        latents: list[Tensor] = []
        for level in range(self.levels):
            y, _ = self.squeeze(y)  # [B, C_l, H_l, W_l]
            y, ld = self.steps[level](y, hs[level])
            logdet = logdet + ld
            if level < self.levels - 1:
                split = self.splits[level]
                y, ld = split(y, hs[level])
                logdet = logdet + ld
                y, eps = y.split([split.keep, y.shape[1] - split.keep], dim=1)  # one split: one backward
                latents.append(eps)  # eps_l ~ N(0, I)
        latents.append(y)
        return latents, logdet

    def inverse_transform(self, latents: Sequence[Tensor], hs: Sequence[Tensor | None]) -> Tensor:
        """Latents back to data: the exact inverse of :meth:`transform`."""
        y = latents[-1]
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                y = self.splits[level].inverse(torch.cat([y, latents[level]], dim=1), hs[level])
            y = self.steps[level].inverse(y, hs[level])
            y = self.squeeze.inverse(y)
        return y

    # --- densities --------------------------------------------------------------------------
    def log_prob(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """$\\log p(y \\mid x)$ in nats per sample, ``[B]``.

        Implements eq. (7) of Winkler et al. 2019 for the multi-scale architecture.

        Args:
            y: Data, ``[B, C, H, W]`` with $H, W$ divisible by $2^L$.
            x: Conditioning input (whatever the conditioner takes), or ``None``.
        """
        check_finite("y", y)  # skipped under torch.compile: validate on the data side there
        hs = self.features(x)
        latents, logdet = self.transform(y, hs)
        log_p = logdet
        for eps in latents[:-1]:
            log_p = log_p + gaussian_log_prob(eps)
        if self.prior is None:
            log_p = log_p + gaussian_log_prob(latents[-1])
        else:
            log_p = log_p + self.prior.log_prob(latents[-1], hs[-1])
        return log_p

    def bits_per_dim(self, y: Tensor, x: Tensor | None = None) -> Tensor:
        """$-\\log_2 p(y \\mid x) / D$ per sample, ``[B]`` (continuous density; no dequantization offset)."""
        return -self.log_prob(y, x) / (math.log(2.0) * y[0].numel())

    @torch.no_grad()
    def sample(
        self,
        x: Tensor | None = None,
        temperature: float = 1.0,
        shape: tuple[int, int, int, int] | None = None,
    ) -> Tensor:
        """Draw $y \\sim p(y \\mid x)$ at temperature $\\tau$; $\\tau = 0$ follows the means.

        Args:
            x: Conditioning input (one sample per row), or ``None`` when unconditional.
            temperature: $\\tau$, scaling the standard deviation of every prior.
            shape: ``(B, C, H, W)`` of the output; needed only without a conditioner.

        Returns:
            Samples ``[B, C, H, W]``.
        """
        return self.generate(x, temperature, shape)

    def generate(
        self,
        x: Tensor | None = None,
        temperature: float = 1.0,
        shape: tuple[int, int, int, int] | None = None,
    ) -> Tensor:
        """:meth:`sample` with gradients: the flow run from its latents to the data, ``[B, C, H, W]``.

        At $\\tau = 0$ this is a deterministic feed-forward network of $x$ (every prior at its
        mean), which is how the vessel baseline runs "the exact same architecture as the flow"
        (:class:`~cnf_teach.vessels.SegBaseline`).
        """
        hs = self.features(x)
        if self.prior is not None:
            z = self.prior.sample(hs[-1], temperature)
        else:
            if shape is None:
                raise ValueError("an unconditional flow needs shape=(B, C, H, W) to sample")
            b, _, height, width = shape
            s = 2**self.levels
            ref = next(self.parameters())
            z = torch.randn(b, self.top_channels, height // s, width // s, device=ref.device, dtype=ref.dtype)
            z = temperature * z
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                z = self.splits[level].sample(z, hs[level], temperature)
            z = self.steps[level].inverse(z, hs[level])
            z = self.squeeze.inverse(z)
        return z
