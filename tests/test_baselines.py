"""Factorized baselines: the discretized logistic is a distribution; the weighted Bernoulli is eq. (9) as printed."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnf_teach.baselines import (
    DEFAULT_BETA,
    DiscretizedLogisticBaseline,
    WeightedBernoulliBaseline,
    discretized_logistic_log_prob,
    discretized_logistic_log_prob_per_dim,
    discretized_logistic_mode,
    discretized_logistic_sample,
    weighted_bce_loss,
    weighted_bernoulli_log_prob,
    weighted_bernoulli_log_prob_per_dim,
)

K = 256


def _all_values(mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """$\\log P(k)$ for every $k$ and every (mean, log_scale) pair: ``[N] -> [K, N]``."""
    n = mean.numel()
    y = torch.arange(K, dtype=mean.dtype)[:, None].expand(K, n)
    return discretized_logistic_log_prob_per_dim(y, mean.expand(K, n), log_scale.expand(K, n), K)


# --- discretized logistic --------------------------------------------------------------------------
def test_discretized_logistic_sums_to_one_over_256_values() -> None:
    mean = torch.tensor([0.5, 0.0, 1.0, -0.3, 1.4, 0.123, 0.5, 0.5, 0.999], dtype=torch.float64)
    log_scale = torch.tensor([-3.0, -2.0, -2.0, -1.0, -1.0, -7.0, 3.0, -12.0, -9.0], dtype=torch.float64)
    lp = _all_values(mean, log_scale)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp.exp().sum(0), torch.ones_like(mean), atol=1e-10, rtol=0)
    # float32 too, at a typical scale.
    lp32 = _all_values(mean.float(), log_scale.float())
    torch.testing.assert_close(lp32.exp().sum(0), torch.ones(len(mean)), atol=1e-5, rtol=0)


def test_discretized_logistic_matches_cdf_differences() -> None:
    mean, log_scale = torch.tensor([0.37], dtype=torch.float64), torch.tensor([-2.5], dtype=torch.float64)
    s = math.exp(-2.5)
    lp = _all_values(mean, log_scale)[:, 0]
    edges = torch.arange(1, K, dtype=torch.float64) / K  # interior edges 1/K .. (K-1)/K
    cdf = torch.cat([torch.zeros(1), torch.sigmoid((edges - 0.37) / s), torch.ones(1)])  # edge bins to +-inf
    torch.testing.assert_close(lp.exp(), cdf[1:] - cdf[:-1], atol=1e-12, rtol=1e-9)


def test_discretized_logistic_is_stable_for_sharp_logistics() -> None:
    # A very narrow logistic centred in bin 100: almost all mass there, finite log-probs elsewhere.
    mean = torch.tensor([100.5 / K])
    lp = _all_values(mean, torch.tensor([-12.0]))[:, 0]
    assert lp[100].item() > -1e-4
    assert torch.isfinite(lp[98:103]).all()


def test_discretized_logistic_mode_is_the_argmax() -> None:
    g = torch.Generator().manual_seed(0)
    mean = torch.rand(400, generator=g, dtype=torch.float64) * 1.4 - 0.2
    log_scale = torch.rand(400, generator=g, dtype=torch.float64) * 7 - 6  # s in (0.0025, 2.7)
    lp = _all_values(mean, log_scale)  # [K, N]
    expected = lp.argmax(0)
    got = discretized_logistic_mode(mean, K, log_scale)
    assert torch.equal(got, expected)
    # Without a scale: the bin holding the mean (the mode for narrow logistics).
    narrow = torch.full_like(mean, -8.0)
    assert torch.equal(discretized_logistic_mode(mean, K), _all_values(mean, narrow).argmax(0))


def test_discretized_logistic_sample_follows_the_probabilities() -> None:
    mean = torch.full((20000,), 3.5 / K)
    log_scale = torch.full((20000,), math.log(1.0 / K))
    samples = discretized_logistic_sample(mean, log_scale, K)
    freq = torch.bincount(samples, minlength=K).double() / 20000
    probs = _all_values(mean[:1].double(), log_scale[:1].double())[:, 0].exp()
    assert (freq - probs).abs().max() < 0.015


def test_discretized_logistic_sums_over_dims_and_checks_input() -> None:
    y = torch.randint(0, K, (2, 3, 4, 4))
    mean, log_scale = torch.rand(2, 3, 4, 4), torch.full((2, 3, 4, 4), -3.0)
    total = discretized_logistic_log_prob(y, mean, log_scale)
    per_dim = discretized_logistic_log_prob_per_dim(y, mean, log_scale)
    torch.testing.assert_close(total, per_dim.sum((1, 2, 3)))
    with pytest.raises(ValueError, match="shape of y"):
        discretized_logistic_log_prob(y, mean[:, :1], log_scale)
    with pytest.raises(ValueError, match=r"\{0, \.\.\., 255\}"):
        discretized_logistic_log_prob(y + 256, mean, log_scale)


# --- weighted Bernoulli, eq. (9) as printed ---------------------------------------------------------
def _eq9_by_hand(y: torch.Tensor, p: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. (9) of Winkler et al. 2019 typed from the paper, one factor per pixel (probabilities, not logs)."""
    numerator = p ** (beta * y) * (1 - p) ** ((1 - beta) * (1 - y))
    return numerator / (p**beta + (1 - p) ** (1 - beta))


@pytest.mark.parametrize("beta", [0.05, 0.3, 0.5, 0.9])
def test_weighted_bernoulli_is_the_printed_formula(beta: float) -> None:
    logits = torch.linspace(-6, 6, 49, dtype=torch.float64)[None].expand(2, 49)
    y = torch.stack([torch.zeros(49), torch.ones(49)]).double()
    expected = _eq9_by_hand(y, torch.sigmoid(logits), beta)
    torch.testing.assert_close(weighted_bernoulli_log_prob_per_dim(y, logits, beta).exp(), expected)


@pytest.mark.parametrize("beta", [0.05, 0.3, 0.5, 0.9])
def test_printed_normaliser_sums_the_two_values_of_the_numerator(beta: float) -> None:
    """The numerator is p**beta at y = 1 and (1 - p)**(1 - beta) at y = 0; the printed normaliser is their sum."""
    logits = torch.linspace(-30, 30, 101, dtype=torch.float64)[None]
    p0 = weighted_bernoulli_log_prob_per_dim(torch.zeros_like(logits), logits, beta).exp()
    p1 = weighted_bernoulli_log_prob_per_dim(torch.ones_like(logits), logits, beta).exp()
    torch.testing.assert_close(p0 + p1, torch.ones_like(p0), atol=1e-12, rtol=0)


def test_printed_formula_is_a_tempered_bernoulli() -> None:
    """Not Bernoulli(p): at beta = 1/2, P(1) = sqrt(p) / (sqrt(p) + sqrt(1 - p)), flatter than p."""
    p = torch.tensor([[0.1, 0.5, 0.9]], dtype=torch.float64)
    logits = torch.logit(p)
    p1 = weighted_bernoulli_log_prob_per_dim(torch.ones_like(p), logits, 0.5).exp()
    torch.testing.assert_close(p1, p.sqrt() / (p.sqrt() + (1 - p).sqrt()))
    assert p1[0, 2] < 0.9 and p1[0, 0] > 0.1  # flatter than the plain Bernoulli
    # beta = 0.9: a soft-image value of 1/2 gives the vessel class 1 / (1 + 2**0.8) = 0.3648.
    half = weighted_bernoulli_log_prob_per_dim(torch.ones(1, 1, dtype=torch.float64), torch.zeros(1, 1).double(), 0.9)
    assert half.exp().item() == pytest.approx(1 / (1 + 2**0.8), abs=1e-12)


def test_default_beta_weights_the_vessels_up() -> None:
    """Default beta: a missed vessel costs more than background painted as vessel (over-dilation is cheap)."""
    assert DEFAULT_BETA == 0.9
    logit = torch.tensor([[2.0]])  # p = 0.88
    missed_vessel = weighted_bce_loss(torch.ones(1, 1), -logit)  # vessel predicted at 1 - 0.88
    painted_background = weighted_bce_loss(torch.zeros(1, 1), logit)  # background predicted at 0.88
    assert missed_vessel > 5 * painted_background
    # The minimiser of the expected loss for a pixel that is a vessel with probability q leans towards vessels:
    # p* = beta q / (beta q + (1 - beta)(1 - q)), where the gradient vanishes.
    q = 0.3
    p_star = 0.9 * q / (0.9 * q + 0.1 * (1 - q))
    for p, sign in ((p_star, 0), (p_star - 0.05, -1), (p_star + 0.05, 1)):
        logit = torch.logit(torch.tensor([[p]], dtype=torch.float64)).requires_grad_()
        risk = q * weighted_bce_loss(torch.ones(1, 1).double(), logit)
        risk = risk + (1 - q) * weighted_bce_loss(torch.zeros(1, 1).double(), logit)
        (grad,) = torch.autograd.grad(risk, logit)
        assert (grad.item() == pytest.approx(0.0, abs=1e-12)) if sign == 0 else (grad.item() * sign > 0)
    assert p_star > q


def test_weighted_bce_is_the_log_numerator() -> None:
    logits = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    y = (torch.rand(2, 1, 4, 4) < 0.5).double()
    beta = 0.8
    w = torch.where(y == 1, beta, 1 - beta)
    expected = (w * F.binary_cross_entropy_with_logits(logits, y, reduction="none")).mean()
    torch.testing.assert_close(weighted_bce_loss(y, logits, beta), expected)
    # At beta = 1/2 it is half the plain binary cross-entropy.
    torch.testing.assert_close(weighted_bce_loss(y, logits, 0.5), 0.5 * F.binary_cross_entropy_with_logits(logits, y))
    # The normalised likelihood is the log numerator minus the log normaliser, which is never zero.
    numerator = -weighted_bce_loss(y, logits, beta) * y.numel()  # sum of log numerators
    p = torch.sigmoid(logits)
    log_normaliser = torch.log(p**beta + (1 - p) ** (1 - beta)).sum()
    torch.testing.assert_close(weighted_bernoulli_log_prob(y, logits, beta).sum(), numerator - log_normaliser)


def test_weighted_bernoulli_rejects_bad_input() -> None:
    logits = torch.zeros(1, 4)
    with pytest.raises(ValueError, match="exactly binary"):
        weighted_bernoulli_log_prob(torch.full((1, 4), 0.5), logits, 0.5)
    with pytest.raises(ValueError, match="beta"):
        weighted_bce_loss(torch.zeros(1, 4), logits, 1.0)
    with pytest.raises(ValueError, match="shape of y"):
        weighted_bce_loss(torch.zeros(1, 4), torch.zeros(1, 3))


# --- the wrappers ------------------------------------------------------------------------------------
def test_baseline_modules_wrap_a_network_of_x() -> None:
    x = torch.randn(2, 3, 8, 8)
    logistic = DiscretizedLogisticBaseline(nn.Conv2d(3, 6, 3, padding=1))
    y = torch.randint(0, K, (2, 3, 8, 8))
    lp = logistic.log_prob(y, x)
    assert lp.shape == (2,) and torch.isfinite(lp).all()
    assert logistic.mode(x).shape == y.shape and logistic.sample(x).dtype == torch.long
    bern = WeightedBernoulliBaseline(nn.Conv2d(3, 1, 3, padding=1), beta=0.7)
    mask = (torch.rand(2, 1, 8, 8) < 0.2).float()
    assert bern.log_prob(mask, x).shape == (2,)
    loss = bern.loss(mask, x)
    loss.backward()
    assert bern.net.weight.grad is not None
    p = bern.probs(x)
    assert ((p > 0) & (p < 1)).all()
    assert set(bern.sample(x).unique().tolist()) <= {0.0, 1.0}
    assert set(bern.sample(x, source="normalised").unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="soft"):
        bern.sample(x, source="mode")


def test_baseline_samples_have_the_soft_image_as_mean() -> None:
    """§5.2: samples of a factored model come from a Bernoulli whose mean is the soft image, not P_beta(y = 1)."""
    net = nn.Conv2d(1, 1, 1, bias=True)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()  # logits 0: soft image 1/2 everywhere
    bern = WeightedBernoulliBaseline(net, beta=0.9)
    x = torch.zeros(1, 1, 200, 200)
    torch.manual_seed(0)
    assert bern.soft_map(x).unique().tolist() == [0.5]
    assert bern.sample(x).mean().item() == pytest.approx(0.5, abs=0.01)
    assert bern.sample(x, source="normalised").mean().item() == pytest.approx(1 / (1 + 2**0.8), abs=0.01)
