"""The retinal-vessel segmentation models of Winkler et al. 2019 (§5.2, Tables 3, 4 and 7).

Three models of $P(y \\mid x)$ for a binary vessel map $y \\in \\{0, 1\\}^{H \\times W}$ given
a fundus photograph $x$, all built on the same VGG-like conditioner $g(x)$ (Table 4):

- :class:`SegFlow` with ``dequantization="binary"``: the paper's CNF. A multi-scale
  flow ($L = 2$, $K = 2$; instance normalisation instead of actnorm; additive couplings
  with the coupling net of Table 7) models a continuous $v$; the binary variational
  dequantizer (eq. (8)), itself a single-scale conditional flow, maps $y$ to $v$ on the
  half-lines $v > 1/2$ (vessel) and $v < 1/2$ (background). Its likelihood is the
  bound of eq. (5), $\\log P(y \\mid x) \\ge \\mathbb{E}_q[\\log p(v \\mid x) - \\log q(v \\mid y, x)]$.
- :class:`SegFlow` with ``dequantization="uniform"``: the same CNF with uniform noise
  in $[0, 1/2)$ and $[1/2, 1)$, "CNF Uniform" of Table 3.
- :class:`SegBaseline`: the factored likelihood baseline, the same conditioner and flow run
  feed-forward (at temperature 0) into per-pixel logits, trained with the weighted cross-entropy and scored
  with eq. (9) *including its normaliser* (so its bits/dim are a real likelihood). Its soft
  map is the network's output $p_j = \\sigma(\\ell_j)$ and its samples are Bernoulli($p_j$), as
  §5.2 draws samples of the factored models (Figs. 4 and 5).

A sample of either CNF is thresholded at $1/2$ (the boundary of the dequantization
regions) to give a binary map; the mean of $N$ samples is the soft map that is
scored with the PR curve (:mod:`cnf_teach.vessels.evaluation`).

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.2 (eq. 8),
    §5.2, eq. (9), Tables 3, 4 and 7.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from ..baselines import weighted_bce_loss, weighted_bernoulli_log_prob, weighted_bernoulli_log_prob_per_dim
from ..dequantization import BinaryDequantization, UniformDequantization, dequantized_log_likelihood
from ..flows.actnorm import ActNorm
from ..flows.conditional_actnorm import ConditionalActNorm
from ..flows.multiscale import MultiScaleFlow
from ..metrics import nats_to_bits_per_dim
from ..nets.vgg import InstanceNormCouplingNet, VGGFeatures
from .config import SegConfig

__all__ = ["MODEL_KINDS", "SegFlow", "SegBaseline", "build_seg_model", "seg_loss", "vessel_flow"]

ModelKind = Literal["cnf_binary", "cnf_uniform", "baseline"]
#: The three models of Table 3 by name.
MODEL_KINDS: tuple[str, ...] = ("cnf_binary", "cnf_uniform", "baseline")


class _Given(nn.Module):
    """A conditioner that returns features computed outside the flow (so $g(x)$ runs once per step)."""

    def forward(self, hs: Sequence[Tensor]) -> list[Tensor]:
        return list(hs)


def _norm_factory(in_channels: int, levels: int, cond_channels: Sequence[int]):
    """Builds each step's :class:`ConditionalActNorm` with the conditioning width of its level."""
    by_width = {}
    channels = in_channels
    for level in range(levels):
        channels *= 4  # squeeze
        by_width[channels] = cond_channels[level]
        channels -= channels // 2  # split
    return lambda c: ConditionalActNorm(c, by_width[c])


def vessel_flow(config: SegConfig, cond_channels: Sequence[int]) -> MultiScaleFlow:
    """The multi-scale flow of the vessel CNF (§5.2): $L = 2$, $K$ steps of conditional actnorm,
    1x1 convolution and additive coupling with Table 7's net, split and top priors conditioned on
    the VGG features of ``cond_channels`` channels at $H/2$ and $H/4$."""
    hidden = config.coupling_hidden
    return MultiScaleFlow(
        in_channels=1,
        levels=config.levels,
        steps=config.steps,
        conditioner=_Given(),
        cond_channels=cond_channels,
        coupling="additive",
        prior_hidden=config.prior_hidden,
        norm_factory=_norm_factory(1, config.levels, cond_channels),
        net_factory=lambda i, o: InstanceNormCouplingNet(i, o, hidden),
    )


class SegFlow(nn.Module):
    """The conditional flow $P(y \\mid x)$ of binary vessel maps with binary or uniform dequantization.

    Args:
        config: :class:`SegConfig`.
        dequantization: ``"binary"`` (eq. (8), the paper's) or ``"uniform"`` ("CNF Uniform").

    Examples:
        >>> import torch
        >>> from cnf_teach.vessels import SegConfig, SegFlow
        >>> _ = torch.manual_seed(0)
        >>> model = SegFlow(SegConfig.tiny(), dequantization="binary")
        >>> x = torch.rand(2, 3, 8, 8)  # photographs
        >>> y = (torch.rand(2, 1, 8, 8) > 0.8).float()  # binary vessel maps
        >>> model.bits_per_dim(y, x).shape  # an upper bound, one per image
        torch.Size([2])
        >>> sample = model.sample(x)
        >>> sample.shape, bool(((sample == 0) | (sample == 1)).all())
        (torch.Size([2, 1, 8, 8]), True)
    """

    def __init__(self, config: SegConfig, dequantization: Literal["binary", "uniform"] = "binary") -> None:
        super().__init__()
        if dequantization not in ("binary", "uniform"):
            raise ValueError(f"dequantization must be 'binary' or 'uniform', got {dequantization!r}")
        self.config = config
        self.dequantization_kind = dequantization
        self.features = VGGFeatures(config.in_channels, config.vgg_widths, config.vgg_convs, config.full_to_half)
        self.flow = vessel_flow(config, self.features.cond_channels)
        if dequantization == "binary":
            self.dequantizer: nn.Module = BinaryDequantization(
                1,
                cond_channels=self.features.full_channels,
                steps=config.deq_steps,
                hidden=config.deq_hidden,
                features=config.deq_features,
            )
        else:
            self.dequantizer = UniformDequantization(num_bins=2)

    def _check(self, y: Tensor | None, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"x must be images [B, {self.config.in_channels}, H, W], got shape {tuple(x.shape)}")
        if y is not None and (
            y.dim() != 4 or y.shape[1] != 1 or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]
        ):
            raise ValueError(
                f"y must be a vessel map [B, 1, H, W] matching x {tuple(x.shape)}, got shape {tuple(y.shape)}"
            )

    def log_prob(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        """A lower bound on $\\log P(y \\mid x)$ in nats, ``[B]``.

        Implements eq. (5) (with eq. (8) for binary dequantization) of Winkler et al. 2019:
        $\\log p(v \\mid x) - \\log q(v \\mid y, x)$, $v \\sim q$, averaged in the importance-weighted
        way over ``num_samples`` draws.

        Args:
            y: Binary vessel maps ``[B, 1, H, W]``.
            x: Photographs ``[B, C, H, W]``, $H, W$ divisible by 4.
            num_samples: Dequantization samples (1 for training; more gives a tighter bound).
        """
        self._check(y, x)
        full, hs = self.features.all_features(x)
        h_deq = full if self.dequantization_kind == "binary" else None
        return dequantized_log_likelihood(lambda v: self.flow.log_prob(v, hs), self.dequantizer, y, h_deq, num_samples)

    def bits_per_dim(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        """$-\\log_2 P(y \\mid x) / (HW)$ per sample, ``[B]`` (an upper bound, from :meth:`log_prob`)."""
        return nats_to_bits_per_dim(self.log_prob(y, x, num_samples), y[0].numel())

    @torch.no_grad()
    def sample(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        """Binary vessel maps $y \\sim P(y \\mid x)$: a flow sample $v$ thresholded at $1/2$, float ``[B, 1, H, W]``."""
        self._check(None, x)
        _, hs = self.features.all_features(x)
        v = self.flow.sample(hs, temperature)
        return (v > 0.5).to(x.dtype)

    @torch.no_grad()
    def samples(self, x: Tensor, num_samples: int, temperature: float = 1.0) -> Iterator[Tensor]:
        """Yield ``num_samples`` binary maps ``[B, 1, H, W]``, computing $g(x)$ once."""
        self._check(None, x)
        _, hs = self.features.all_features(x)
        for _ in range(num_samples):
            yield (self.flow.sample(hs, temperature) > 0.5).to(x.dtype)

    @torch.no_grad()
    def soft_map(self, x: Tensor, num_samples: int = 100, temperature: float = 1.0) -> Tensor:
        """The mean of ``num_samples`` binary samples, ``[B, 1, H, W]`` in [0, 1] (the paper's soft map)."""
        total = torch.zeros(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        for s in self.samples(x, num_samples, temperature):
            total += s
        return total / num_samples


class SegBaseline(nn.Module):
    """The factored likelihood baseline: the flow's own architecture run feed-forward into per-pixel logits.

    §5.2: the baseline "uses the exact same architecture as the flow but run a feedforward
    model and trained with the weighted Bernoulli loss". Our reading: the same VGG conditioner
    and the same multi-scale flow as :class:`SegFlow` (same config, same modules), run in its
    generative direction at temperature 0, from the top prior's mean $\\mu(h_1)$ through the
    inverse steps, the split prior's mean $\\mu(z_0, h_0)$ and the unsqueezes; its one-channel
    full-resolution output is read as the per-pixel logits $\\ell_j$. Nothing is sampled and no
    determinant is needed, so it is an ordinary feed-forward network of $x$ with the flow's
    parameters; only the CNF's dequantizer is missing. It is trained with the weighted
    cross-entropy (the numerator of eq. (9)) and scored with eq. (9) *including its normaliser*.

    Args:
        config: :class:`SegConfig` (``beta`` is the vessel weight of the loss).

    Examples:
        >>> import torch
        >>> from cnf_teach.vessels import SegBaseline, SegConfig
        >>> _ = torch.manual_seed(0)
        >>> model = SegBaseline(SegConfig.tiny())
        >>> x = torch.rand(2, 3, 8, 8)
        >>> y = (torch.rand(2, 1, 8, 8) > 0.8).float()
        >>> model.logits(x).shape
        torch.Size([2, 1, 8, 8])
        >>> model.bits_per_dim(y, x).shape  # exact: eq. (9) with its normaliser
        torch.Size([2])
        >>> soft = model.soft_map(x)  # per-pixel vessel probabilities
        >>> soft.shape, bool(((soft > 0) & (soft < 1)).all())
        (torch.Size([2, 1, 8, 8]), True)
    """

    def __init__(self, config: SegConfig) -> None:
        super().__init__()
        self.config = config
        self.beta = config.beta
        self.features = VGGFeatures(config.in_channels, config.vgg_widths, config.vgg_convs, config.full_to_half)
        self.flow = vessel_flow(config, self.features.cond_channels)
        # Run feed-forward, the actnorm layers are per-channel affine maps that start at the identity:
        # there is no data-dependent start to wait for.
        for m in self.flow.modules():
            if isinstance(m, ActNorm):
                m.initialized.fill_(True)
                m._initialized = True
        # Table 7's nets and the priors start their last layer at zero (a flow starts as the identity);
        # a feed-forward classifier needs a live start or no gradient reaches its hidden layers.
        for m in self.flow.modules():
            if isinstance(m, nn.Conv2d) and not m.weight.detach().any():
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5))

    def logits(self, x: Tensor) -> Tensor:
        """Per-pixel logits ``[B, 1, H, W]``: the flow run from its prior means at temperature 0."""
        _, hs = self.features.all_features(x)
        return self.flow.generate(hs, temperature=0.0)

    def loss(self, y: Tensor, x: Tensor) -> Tensor:
        """The training loss: the weighted cross-entropy (the numerator of eq. (9))."""
        return weighted_bce_loss(y, self.logits(x), self.beta)

    def log_prob(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        """Exact, normalised $\\log P_\\beta(y \\mid x)$ in nats, ``[B]`` (eq. (9) with its normaliser)."""
        return weighted_bernoulli_log_prob(y, self.logits(x), self.beta)

    def bits_per_dim(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        """$-\\log_2 P_\\beta(y \\mid x) / (HW)$ per sample over the pixels the model sees, ``[B]``."""
        return nats_to_bits_per_dim(self.log_prob(y, x), y[0].numel())

    @torch.no_grad()
    def probs(self, x: Tensor) -> Tensor:
        """$P_\\beta(y_i = 1 \\mid x)$ of every pixel under the normalised eq. (9), ``[B, 1, H, W]``."""
        logits = self.logits(x)
        return torch.exp(weighted_bernoulli_log_prob_per_dim(torch.ones_like(logits), logits, self.beta))

    @torch.no_grad()
    def _mean(self, x: Tensor, source: str) -> Tensor:
        if source == "soft":
            return torch.sigmoid(self.logits(x))
        if source == "normalised":
            return self.probs(x)
        raise ValueError(f"source must be 'soft' (Bernoulli of the soft image) or 'normalised', got {source!r}")

    @torch.no_grad()
    def sample(self, x: Tensor, temperature: float = 1.0, source: str = "soft") -> Tensor:
        """Independent per-pixel samples, float ``[B, 1, H, W]``.

        ``source="soft"`` (default, §5.2 of the paper): Bernoulli with the soft image $p_j$ as
        mean; ``"normalised"``: Bernoulli($P_\\beta(y_j = 1)$) of eq. (9), which is flatter.
        ``temperature`` is accepted so that the CNF and the baseline share one sampling call, and
        ignored: independent Bernoulli pixels have no latent to scale.
        """
        return torch.bernoulli(self._mean(x, source))

    @torch.no_grad()
    def samples(self, x: Tensor, num_samples: int, temperature: float = 1.0, source: str = "soft") -> Iterator[Tensor]:
        """Yield ``num_samples`` per-pixel samples ``[B, 1, H, W]`` (one network pass; see :meth:`sample`)."""
        p = self._mean(x, source)
        for _ in range(num_samples):
            yield torch.bernoulli(p)

    @torch.no_grad()
    def soft_map(self, x: Tensor, num_samples: int = 100, temperature: float = 1.0) -> Tensor:
        """The soft image $p_j = \\sigma(\\ell_j)$, ``[B, 1, H, W]``: the exact mean of :meth:`samples`."""
        return torch.sigmoid(self.logits(x))


def build_seg_model(kind: str, config: SegConfig) -> nn.Module:
    """One of the three models of Table 3: ``"cnf_binary"``, ``"cnf_uniform"`` or ``"baseline"``."""
    if kind == "cnf_binary":
        return SegFlow(config, "binary")
    if kind == "cnf_uniform":
        return SegFlow(config, "uniform")
    if kind == "baseline":
        return SegBaseline(config)
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def seg_loss(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of any vessel model, in the engine's ``loss_fn(model, batch)`` form.

    CNFs minimise the negative bound in bits/dim; the baseline minimises the weighted
    cross-entropy and reports its normalised bits/dim (eq. (9)).
    """
    x, y = batch["x"], batch["y"]
    if isinstance(model, SegBaseline):
        logits = model.logits(x)
        loss = weighted_bce_loss(y, logits, model.beta)
        with torch.no_grad():
            bpd = nats_to_bits_per_dim(weighted_bernoulli_log_prob(y, logits, model.beta), y[0].numel()).mean()
        return loss, {"bpd": bpd.detach()}
    bpd = model.bits_per_dim(y, x).mean()
    return bpd, {"bpd": bpd.detach()}
