"""Factorized baselines: the discretized logistic (8-bit images) and the weighted Bernoulli (masks).

The paper compares its flows with models that predict every output dimension
independently given $x$, $P(y \\mid x) = \\prod_i P(y_i \\mid x)$, with the parameters of
each factor computed by a network of $x$ (eq. (6) of Winkler et al. 2019). Both
likelihoods here are *exact* probabilities of discrete data, so their bits per
dimension compare directly with a flow's dequantized bound.

- Super-resolution: the discretized logistic of PixelCNN++ (Salimans et al. 2017).
  Pixel value $k \\in \\{0, \\dots, K-1\\}$ owns the bin $[k/K, (k+1)/K)$ of $[0, 1]$ (the
  same bins as :class:`~cnf_teach.dequantization.UniformDequantization`), the outer
  bins stretched to $-\\infty$ and $+\\infty$, and $P(k)$ is the mass of a logistic
  $\\mathrm{Logistic}(\\mu, s)$ on its bin.
- Vessel segmentation: the class-weighted Bernoulli of eq. (9). Thin vessels cover
  about a tenth of a fundus image, so segmentation networks are trained with a
  cross-entropy that weights the vessel class up (HED, Xie & Tu 2015). Its
  exponentiated negative loss is not a distribution over $\\{0, 1\\}$; the paper divides
  by its normaliser to report a likelihood, and so do we.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, eqs. (6), (9).
    Salimans, Karpathy, Chen, Kingma. PixelCNN++. ICLR 2017.
    Xie, Tu. Holistically-Nested Edge Detection. ICCV 2015.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .dequantization import check_binary, check_discrete
from .utils import sum_except_batch

__all__ = [
    "DiscretizedLogisticBaseline",
    "WeightedBernoulliBaseline",
    "discretized_logistic_log_prob",
    "discretized_logistic_log_prob_per_dim",
    "discretized_logistic_mode",
    "discretized_logistic_sample",
    "weighted_bce_loss",
    "weighted_bernoulli_log_prob",
    "weighted_bernoulli_log_prob_per_dim",
]


# --- discretized logistic -------------------------------------------------------------------------
def _check_params(y: Tensor, mean: Tensor, log_scale: Tensor) -> None:
    if mean.shape != y.shape or log_scale.shape != y.shape:
        raise ValueError(
            f"mean {tuple(mean.shape)} and log_scale {tuple(log_scale.shape)} must have the shape of y "
            f"{tuple(y.shape)}: one logistic per dimension"
        )


def discretized_logistic_log_prob_per_dim(y: Tensor, mean: Tensor, log_scale: Tensor, num_bins: int = 256) -> Tensor:
    """$\\log P(y_i)$ of every dimension under a discretized logistic, shaped like ``y``.

    With $a = ((k+1)/K - \\mu)/s$ and $b = (k/K - \\mu)/s$ the bin's standardised edges,
    $P(k) = \\sigma(a) - \\sigma(b)$, computed in the overflow-free form
    $\\log P = \\log\\sigma(a) + \\log\\sigma(-b) + \\log(1 - e^{b - a})$ (exact, since
    $\\sigma(a) - \\sigma(b) = \\sigma(a)\\,\\sigma(-b)\\,(1 - e^{b-a})$). The first bin has
    $b = -\\infty$ ($\\log P = \\log\\sigma(a)$), the last $a = +\\infty$ ($\\log P = \\log\\sigma(-b)$),
    so the $K$ probabilities sum to one exactly.

    Args:
        y: Integers in $\\{0, \\dots, K-1\\}$, any batched shape.
        mean: $\\mu$ in the $[0, 1]$ space of the bins, shaped like ``y``.
        log_scale: $\\log s$, shaped like ``y``.
        num_bins: $K$.

    Returns:
        Log-probabilities in nats, shaped like ``y``.
    """
    check_discrete(y, num_bins)
    _check_params(y, mean, log_scale)
    y = y.to(mean.dtype)
    inv_s = torch.exp(-log_scale)
    a = ((y + 1) / num_bins - mean) * inv_s  # upper edge
    b = (y / num_bins - mean) * inv_s  # lower edge
    width = inv_s / num_bins  # a - b > 0
    middle = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(-width))
    first = F.logsigmoid(a)
    last = F.logsigmoid(-b)
    return torch.where(y == 0, first, torch.where(y == num_bins - 1, last, middle))


def discretized_logistic_log_prob(y: Tensor, mean: Tensor, log_scale: Tensor, num_bins: int = 256) -> Tensor:
    """$\\log P(y \\mid x) = \\sum_i \\log P(y_i)$ under a factorized discretized logistic, ``[B]``.

    Implements the factorized likelihood of eq. (6) of Winkler et al. 2019 with the
    discretized logistic of Salimans et al. 2017 (edge bins to $\\pm\\infty$). An exact
    log-probability of the discrete data, in nats; see
    :func:`discretized_logistic_log_prob_per_dim` for the formula.

    Args:
        y: Integers in $\\{0, \\dots, K-1\\}$, ``[B, ...]``.
        mean: $\\mu$ in $[0, 1]$ space, shaped like ``y``.
        log_scale: $\\log s$, shaped like ``y``.
        num_bins: $K$.
    """
    return sum_except_batch(discretized_logistic_log_prob_per_dim(y, mean, log_scale, num_bins))


def discretized_logistic_mode(mean: Tensor, num_bins: int = 256, log_scale: Tensor | None = None) -> Tensor:
    """The most likely bin of each discretized logistic (an integer tensor shaped like ``mean``).

    Equal-width interior bins of a symmetric unimodal density carry the most mass when
    their centre is nearest $\\mu$, so the interior winner is the bin holding $\\mu$
    (clamped to $1..K-2$). Without ``log_scale`` that bin is returned (clamped to
    $0..K-1$): the mode whenever $s$ is small next to $\\mu$'s distance from the edges,
    the usual case. With ``log_scale`` the open-ended edge bins, whose tails can win for
    wide logistics, are compared as well, and the result is the exact argmax.

    Args:
        mean: $\\mu$ in $[0, 1]$ space, any shape.
        num_bins: $K$.
        log_scale: $\\log s$, shaped like ``mean``, or ``None``.
    """
    k = torch.floor(mean * num_bins)
    if log_scale is None:
        return k.clamp(0, num_bins - 1).long()
    candidates = torch.stack(
        [k.clamp(1, num_bins - 2), torch.zeros_like(k), torch.full_like(k, num_bins - 1)]
    )  # [3, ...]
    lp = torch.stack(
        [
            discretized_logistic_log_prob_per_dim(c.unsqueeze(0), mean.unsqueeze(0), log_scale.unsqueeze(0), num_bins)[
                0
            ]
            for c in candidates
        ]
    )
    best = lp.argmax(dim=0, keepdim=True)
    return torch.gather(candidates, 0, best)[0].long()


def discretized_logistic_sample(mean: Tensor, log_scale: Tensor, num_bins: int = 256) -> Tensor:
    """Draw integer samples from the discretized logistic: sample the logistic, then take its bin."""
    u = torch.rand_like(mean).clamp(1e-6, 1 - 1e-6)
    v = mean + torch.exp(log_scale) * (torch.log(u) - torch.log1p(-u))
    return torch.floor(v * num_bins).clamp(0, num_bins - 1).long()


# --- weighted Bernoulli --------------------------------------------------------------------------
def _check_beta(beta: float) -> None:
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta (the weight of the positive class) must be in (0, 1), got {beta}")


def weighted_bernoulli_log_prob_per_dim(y: Tensor, logits: Tensor, beta: float) -> Tensor:
    """Normalised $\\log P_\\beta(y_i)$ of every pixel under the weighted Bernoulli, shaped like ``y``.

    With $\\hat y = \\sigma(\\ell)$ the predicted probability, the weighted cross-entropy's
    numerator is $\\tilde P(y) = \\hat y^{\\,2\\beta y}\\,(1-\\hat y)^{2(1-\\beta)(1-y)}$ and

    $$P_\\beta(y) = \\frac{\\tilde P(y)}{\\hat y^{\\,2\\beta} + (1 - \\hat y)^{2(1-\\beta)}},$$

    a distribution over $\\{0, 1\\}$ for every $\\beta \\in (0, 1)$; at $\\beta = 1/2$ the
    normaliser is 1 and $P_\\beta$ is the plain Bernoulli($\\hat y$).

    Args:
        y: Exactly binary targets, any batched shape.
        logits: $\\ell$, shaped like ``y``.
        beta: Weight of the positive class, in $(0, 1)$.
    """
    check_binary(y)
    _check_beta(beta)
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must have the shape of y {tuple(y.shape)}")
    y = y.to(logits.dtype)
    w1, w0 = 2.0 * beta, 2.0 * (1.0 - beta)
    log_p1 = F.logsigmoid(logits)  # log y_hat
    log_p0 = F.logsigmoid(-logits)  # log(1 - y_hat)
    log_numerator = w1 * y * log_p1 + w0 * (1 - y) * log_p0
    log_normaliser = torch.logaddexp(w1 * log_p1, w0 * log_p0)
    return log_numerator - log_normaliser


def weighted_bernoulli_log_prob(y: Tensor, logits: Tensor, beta: float) -> Tensor:
    """$\\log P_\\beta(y \\mid x)$ of a mask under the normalised weighted Bernoulli, ``[B]`` (nats).

    Implements eq. (9) of Winkler et al. 2019 *with its normaliser*: the likelihood the
    paper reports for the weighted-cross-entropy baseline. Exact and normalised over
    $\\{0, 1\\}^D$; see :func:`weighted_bernoulli_log_prob_per_dim` for the formula.

    Args:
        y: Exactly binary masks ``[B, ...]``.
        logits: Per-pixel logits $\\ell$ of a network of $x$, shaped like ``y``.
        beta: Weight of the positive (vessel) class, in $(0, 1)$.
    """
    return sum_except_batch(weighted_bernoulli_log_prob_per_dim(y, logits, beta))


def weighted_bce_loss(y: Tensor, logits: Tensor, beta: float) -> Tensor:
    """The class-weighted binary cross-entropy used for training, a scalar (mean over pixels).

    $-\\frac1N \\sum_i \\left[2\\beta\\, y_i \\log\\hat y_i + 2(1-\\beta)(1-y_i)\\log(1-\\hat y_i)\\right]$:
    the negative log of the numerator of eq. (9) of Winkler et al. 2019, the loss the
    literature trains with (HED's class-balanced loss, Xie & Tu 2015, is this halved).
    At $\\beta = 1/2$ it is the plain binary cross-entropy.

    Args:
        y: Exactly binary targets, any batched shape.
        logits: $\\ell$, shaped like ``y``.
        beta: Weight of the positive class, in $(0, 1)$ (e.g. the fraction of negatives).
    """
    check_binary(y)
    _check_beta(beta)
    if logits.shape != y.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must have the shape of y {tuple(y.shape)}")
    y = y.to(logits.dtype)
    nll = -(2.0 * beta * y * F.logsigmoid(logits) + 2.0 * (1.0 - beta) * (1 - y) * F.logsigmoid(-logits))
    return nll.mean()


# --- small wrappers: a network of x -> parameters -> likelihood -----------------------------------
class DiscretizedLogisticBaseline(nn.Module):
    """$P(y \\mid x) = \\prod_i \\mathrm{DiscLogistic}(y_i; \\mu_i(x), s_i(x))$, a factorized baseline.

    Args:
        net: Maps $x$ to ``[B, 2C, H, W]``: $\\mu$ in the first $C$ channels, $\\log s$ in
            the last $C$ (at the resolution of $y$).
        num_bins: $K$.
    """

    def __init__(self, net: nn.Module, num_bins: int = 256) -> None:
        super().__init__()
        self.net = net
        self.num_bins = num_bins

    def params(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """$\\mu(x)$ and $\\log s(x)$, each ``[B, C, H, W]``."""
        out = self.net(x)
        if out.shape[1] % 2:
            raise ValueError(f"the network must return 2C channels (mean, log_scale), got {out.shape[1]}")
        mean, log_scale = out.chunk(2, dim=1)
        return mean, log_scale

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        """Exact $\\log P(y \\mid x)$ in nats, ``[B]`` (eq. (6) of Winkler et al. 2019)."""
        mean, log_scale = self.params(x)
        return discretized_logistic_log_prob(y, mean, log_scale, self.num_bins)

    def mode(self, x: Tensor) -> Tensor:
        """The most likely value of every pixel, integers ``[B, C, H, W]``."""
        mean, log_scale = self.params(x)
        return discretized_logistic_mode(mean, self.num_bins, log_scale)

    def sample(self, x: Tensor) -> Tensor:
        """Independent samples of every pixel, integers ``[B, C, H, W]``."""
        mean, log_scale = self.params(x)
        return discretized_logistic_sample(mean, log_scale, self.num_bins)


class WeightedBernoulliBaseline(nn.Module):
    """A per-pixel classifier trained with weighted cross-entropy, scored by the normalised eq. (9).

    Args:
        net: Maps $x$ to logits shaped like the mask ``[B, C, H, W]``.
        beta: Weight of the positive class, in $(0, 1)$.
    """

    def __init__(self, net: nn.Module, beta: float = 0.5) -> None:
        super().__init__()
        _check_beta(beta)
        self.net = net
        self.beta = beta

    def loss(self, y: Tensor, x: Tensor) -> Tensor:
        """Training loss: :func:`weighted_bce_loss` of the network's logits."""
        return weighted_bce_loss(y, self.net(x), self.beta)

    def log_prob(self, y: Tensor, x: Tensor) -> Tensor:
        """Normalised $\\log P_\\beta(y \\mid x)$ in nats, ``[B]`` (eq. (9) with its normaliser)."""
        return weighted_bernoulli_log_prob(y, self.net(x), self.beta)

    def probs(self, x: Tensor) -> Tensor:
        """$P_\\beta(y_i = 1 \\mid x)$ of every pixel under the normalised likelihood."""
        logits = self.net(x)
        return torch.exp(weighted_bernoulli_log_prob_per_dim(torch.ones_like(logits), logits, self.beta))

    def sample(self, x: Tensor) -> Tensor:
        """Independent binary samples from the normalised likelihood, float ``[B, C, H, W]``."""
        return torch.bernoulli(self.probs(x))
