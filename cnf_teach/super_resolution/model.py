"""The super-resolution CNF of Winkler et al. 2019 and its factorized baseline.

Super-resolution as likelihood learning (§5.1): model $P(y \\mid x)$ of a high-resolution
image $y$ (integers $0..255$) given its bicubic-downscaled version $x$.

- :class:`SuperResolutionCNF`: a multi-scale conditional flow ($L = 2$ levels of $K = 8$
  steps, coupling nets conv3x3(512)-ReLU-conv1x1(512)-ReLU-conv3x3) whose couplings, split
  prior and top prior all see RRDB features of $x$ (16 blocks, growth 32, 128 context
  channels), trained on uniformly dequantized $y$ (variational dequantization as an
  option). Its ``log_prob`` is the dequantization bound on $\\log P(y \\mid x)$ (eqs. (4)-(5)).
- :class:`SuperResolutionBaseline`: the factorized discretized logistic
  $P(y \\mid x) = \\prod_i \\mathrm{DiscLogistic}(y_i; \\mu_i(x), s_i(x))$ (eq. (6)) with the
  same RRDB (growth 55, so that both models have as many parameters), a pixel-shuffle head
  at $y$'s resolution, and an exact ``log_prob``; its prediction is the per-pixel mode.

Both take ``y`` and ``x`` as integer-valued images in $\\{0, \\dots, 255\\}$ (uint8 or float
tensors, ``[B, 3, s h, s w]`` and ``[B, 3, h, w]``), and answer ``log_prob(y, x)`` (nats,
``[B]``), ``bits_per_dim(y, x)`` and ``predict(x, temperature)`` (uint8 images).

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1,
    Tables 1, 2, 5, 6 and 8.
    Wang et al. ESRGAN. ECCV Workshops 2018 (RRDB).
    Salimans et al. PixelCNN++. ICLR 2017 (discretized logistic).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from ..baselines import DiscretizedLogisticBaseline
from ..dequantization import UniformDequantization, VariationalDequantization
from ..flows.multiscale import MultiScaleFlow
from ..nets.rrdb import RRDBConditioner, RRDBNet
from .config import NUM_BINS, SRConfig

__all__ = [
    "SuperResolutionCNF",
    "SuperResolutionBaseline",
    "build_sr_model",
    "count_parameters",
    "sr_loss",
]


def _as_input(x: Tensor) -> Tensor:
    """uint8-valued images $0..255$ -> floats in $[-0.5, 0.5]$ for the conditioning network."""
    return x.float() / (NUM_BINS - 1) - 0.5


def _check_pair(model: nn.Module, y: Tensor | None, x: Tensor, scale: int, multiple: int) -> None:
    name = type(model).__name__
    if x.dim() != 4:
        raise ValueError(f"{name}: x must be a batch of LR images [B, C, h, w], got shape {tuple(x.shape)}")
    if y is None:
        if (x.shape[2] * scale) % multiple or (x.shape[3] * scale) % multiple:
            raise ValueError(
                f"{name}: LR size {x.shape[2]}x{x.shape[3]} times {scale} is not a multiple of {multiple}; "
                "pad the image (cnf_teach.data.images.pad_to_multiple) and crop the output back"
            )
        return
    if y.dim() != 4 or y.shape[0] != x.shape[0] or tuple(y.shape[2:]) != (x.shape[2] * scale, x.shape[3] * scale):
        raise ValueError(
            f"{name}: y {tuple(y.shape)} must be x {tuple(x.shape)} upscaled {scale}x "
            f"([B, C, {x.shape[2] * scale}, {x.shape[3] * scale}])"
        )


class _GivenFeatures(nn.Module):
    """The flow's conditioner when the model computes $g(x)$ itself: passes the feature list through.

    The SR model runs the RRDB once per batch and hands the maps to the flow (and, with
    variational dequantization, one more map to the dequantizer).
    """

    def forward(self, hs: list[Tensor]) -> list[Tensor]:
        return hs


class SuperResolutionCNF(nn.Module):
    """The conditional normalizing flow for super-resolution (Winkler et al. 2019, §5.1).

    Args:
        config: :class:`SRConfig`.

    Examples:
        >>> import torch
        >>> from cnf_teach.super_resolution import SRConfig, SuperResolutionCNF
        >>> _ = torch.manual_seed(0)
        >>> model = SuperResolutionCNF(SRConfig.tiny())
        >>> lr = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)  # LR images x
        >>> hr = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)  # HR images y, 2x larger
        >>> model.bits_per_dim(hr, lr).shape  # a bound on -log2 P(y | x) / D, one per image
        torch.Size([2])
        >>> sr = model.sample(lr, temperature=0.8)
        >>> sr.shape, sr.dtype
        (torch.Size([2, 3, 16, 16]), torch.uint8)
    """

    def __init__(self, config: SRConfig | None = None) -> None:
        super().__init__()
        self.config = config = config if config is not None else SRConfig.tiny()
        variational = config.dequantization == "variational"
        self.conditioner = RRDBConditioner(
            config.channels,
            config.rrdb_features,
            config.rrdb_blocks,
            config.rrdb_growth,
            config.levels,
            config.scale,
            full_resolution=variational,
        )
        self.flow = MultiScaleFlow(
            config.channels,
            config.levels,
            config.steps,
            conditioner=_GivenFeatures(),
            cond_channels=config.rrdb_features,
            hidden=config.hidden,
            prior_hidden=config.prior_hidden,
        )
        self.dequantizer: nn.Module
        if variational:
            self.dequantizer = VariationalDequantization(
                config.channels,
                NUM_BINS,
                cond_channels=config.rrdb_features,
                steps=config.deq_steps,
                hidden=config.deq_hidden,
            )
        else:
            self.dequantizer = UniformDequantization(NUM_BINS)

    def features(self, x: Tensor) -> list[Tensor]:
        """$g(x)$: RRDB feature maps, one per level (plus one at $y$'s resolution if variational)."""
        _check_pair(self, None, x, self.config.scale, 2**self.config.levels)
        return self.conditioner(_as_input(x))

    def log_density(self, v: Tensor, hs: list[Tensor]) -> Tensor:
        """$\\log p(v \\mid x)$ of the continuous $v \\in [0, 1)^D$ in nats, ``[B]``, given ``hs = features(x)``.

        Implements eq. (7) of Winkler et al. 2019; the flow sees $v - 1/2$ (a shift, log-det 0).
        """
        return self.flow.log_prob(v - 0.5, hs[: self.config.levels])

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        """One-sample dequantization bound on $\\log P(y \\mid x)$ in nats, ``[B]``.

        Implements eqs. (4)-(5) of Winkler et al. 2019:
        $\\log P(y \\mid x) \\ge \\mathbb{E}_{q(v \\mid y)}[\\log p(v \\mid x) - \\log q(v \\mid y)]$,
        with $v$ drawn from the dequantizer (uniform: $\\log q = D \\log 256$).

        Args:
            y: HR images, integers $0..255$, ``[B, C, s h, s w]``.
            x: LR images, integers $0..255$, ``[B, C, h, w]``.
        """
        _check_pair(self, y, x, self.config.scale, 2**self.config.levels)
        hs = self.features(x)
        h_deq = hs[-1] if self.config.dequantization == "variational" else None
        v, log_q = self.dequantizer(y, h_deq)
        return self.log_density(v, hs) - log_q

    def bits_per_dim(self, y: Tensor, x: Tensor) -> Tensor:
        """Upper bound on $-\\log_2 P(y \\mid x) / D$ of the discrete images, ``[B]``."""
        return -self.log_prob(y, x) / (math.log(2.0) * y[0].numel())

    @torch.no_grad()
    def sample_continuous(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        """$v \\sim p(v \\mid x)$ at temperature $\\tau$, floats ``[B, C, s h, s w]`` (about $[0, 1)$)."""
        hs = self.features(x)
        return self.flow.sample(hs[: self.config.levels], temperature) + 0.5

    @torch.no_grad()
    def sample(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        """An SR image $y \\sim P(y \\mid x)$ at temperature $\\tau$, uint8 ``[B, C, s h, s w]``.

        $\\tau = 0$ follows the priors' means: deterministic. The continuous sample is
        quantized to its bin, $y = \\lfloor 256 v \\rfloor$, clipped to $0..255$.
        """
        v = self.sample_continuous(x, temperature)
        return torch.floor(v * NUM_BINS).clamp(0, NUM_BINS - 1).to(torch.uint8)

    def predict(self, x: Tensor, temperature: float = 0.8) -> Tensor:
        """The model's SR output (a sample at ``temperature``), uint8."""
        return self.sample(x, temperature)


class _BaselineNet(nn.Module):
    """RRDB features of $x$ -> pixel-shuffle head -> $[\\mu, \\log s]$ at $y$'s resolution."""

    def __init__(self, config: SRConfig) -> None:
        super().__init__()
        c, s = config.channels, config.scale
        self.rrdb = RRDBNet(c, config.rrdb_features, config.rrdb_blocks, config.baseline_growth)
        self.head = nn.Sequential(nn.Conv2d(config.rrdb_features, 2 * c * s * s, 3, padding=1), nn.PixelShuffle(s))
        nn.init.zeros_(self.head[0].weight)
        nn.init.zeros_(self.head[0].bias)  # starts at mu = 1/2, s = exp(-3): broad, stable

    def forward(self, x: Tensor) -> Tensor:  # [B, C, h, w] -> [B, 2C, s h, s w]
        out = self.head(self.rrdb(_as_input(x)))
        mean, log_scale = out.chunk(2, dim=1)
        return torch.cat([mean + 0.5, (log_scale - 3.0).clamp(min=-7.0)], dim=1)


class SuperResolutionBaseline(DiscretizedLogisticBaseline):
    """Factorized discretized-logistic SR baseline with an RRDB (growth 55) network, eq. (6).

    Args:
        config: :class:`SRConfig` (uses ``baseline_growth``).

    Examples:
        >>> import torch
        >>> from cnf_teach.super_resolution import SRConfig, SuperResolutionBaseline
        >>> _ = torch.manual_seed(0)
        >>> model = SuperResolutionBaseline(SRConfig.tiny())
        >>> lr = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
        >>> hr = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
        >>> model.bits_per_dim(hr, lr).shape  # exact -log2 P(y | x) / D, one per image
        torch.Size([2])
        >>> sr = model.predict(lr)  # the per-pixel mode
        >>> sr.shape, sr.dtype
        (torch.Size([2, 3, 16, 16]), torch.uint8)
    """

    def __init__(self, config: SRConfig | None = None) -> None:
        config = config if config is not None else SRConfig.tiny()
        super().__init__(_BaselineNet(config), NUM_BINS)
        self.config = config

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        """Exact $\\log P(y \\mid x)$ in nats, ``[B]`` (the factorized model of eq. (6) of Winkler et al. 2019)."""
        _check_pair(self, y, x, self.config.scale, 1)
        return super().log_prob(y, x)

    def bits_per_dim(self, y: Tensor, x: Tensor) -> Tensor:
        """$-\\log_2 P(y \\mid x) / D$, ``[B]`` (exact, no bound)."""
        return -self.log_prob(y, x) / (math.log(2.0) * y[0].numel())

    @torch.no_grad()
    def mode(self, x: Tensor) -> Tensor:
        """The most likely value of every pixel, uint8 ``[B, C, s h, s w]``."""
        return super().mode(x).to(torch.uint8)

    @torch.no_grad()
    def sample(self, x: Tensor, temperature: float = 1.0) -> Tensor:
        """Independent per-pixel samples (``temperature`` 0 gives the mode), uint8."""
        if temperature == 0:
            return self.mode(x)
        mean, log_scale = self.params(x)
        return super().sample(x).to(torch.uint8) if temperature == 1 else self._tempered(mean, log_scale, temperature)

    def _tempered(self, mean: Tensor, log_scale: Tensor, temperature: float) -> Tensor:
        u = torch.rand_like(mean).clamp(1e-6, 1 - 1e-6)
        v = mean + temperature * torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u))
        return torch.floor(v * NUM_BINS).clamp(0, NUM_BINS - 1).to(torch.uint8)

    def predict(self, x: Tensor, temperature: float = 0.0) -> Tensor:
        """The baseline's SR output: the per-pixel mode (``temperature`` > 0 samples)."""
        return self.sample(x, temperature)


def build_sr_model(config: SRConfig, kind: Literal["cnf", "baseline"] = "cnf") -> nn.Module:
    """The SR CNF or its parameter-matched baseline for ``config``."""
    if kind == "cnf":
        return SuperResolutionCNF(config)
    if kind == "baseline":
        return SuperResolutionBaseline(config)
    raise ValueError(f"kind must be 'cnf' or 'baseline', got {kind!r}")


def count_parameters(config: SRConfig, kind: Literal["cnf", "baseline"] = "cnf") -> int:
    """Trainable parameters of a model, counted on the ``meta`` device (no memory, no compute)."""
    with torch.device("meta"):
        model = build_sr_model(config, kind)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- training and evaluation helpers ------------------------------------------------------------
SRModel = SuperResolutionCNF | SuperResolutionBaseline


def sr_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of both SR models: mean bits/dim of HR given LR (the engine's ``loss_fn``).

    Args:
        model: :class:`SuperResolutionCNF` or :class:`SuperResolutionBaseline`.
        batch: ``(lr, hr)`` uint8 ``[B, C, h, w]`` and ``[B, C, s h, s w]``.
    """
    lr, hr = batch
    bpd = model.bits_per_dim(hr, lr).mean()
    return bpd, {"bpd": bpd.detach()}
