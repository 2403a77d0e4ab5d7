"""Factorized baselines: the discretized logistic and the normalised weighted Bernoulli are distributions."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnf_teach.baselines import (
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


# --- weighted Bernoulli ----------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [0.05, 0.3, 0.5, 0.9])
def test_weighted_bernoulli_is_normalised(beta: float) -> None:
    logits = torch.linspace(-30, 30, 101, dtype=torch.float64)[None]
    p0 = weighted_bernoulli_log_prob_per_dim(torch.zeros_like(logits), logits, beta).exp()
    p1 = weighted_bernoulli_log_prob_per_dim(torch.ones_like(logits), logits, beta).exp()
    torch.testing.assert_close(p0 + p1, torch.ones_like(p0), atol=1e-12, rtol=0)


def test_weighted_bernoulli_at_half_is_the_plain_bernoulli() -> None:
    logits = torch.randn(4, 1, 8, 8)
    y = (torch.rand(4, 1, 8, 8) < 0.3).float()
    plain = -F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(weighted_bernoulli_log_prob(y, logits, 0.5), plain)
    torch.testing.assert_close(weighted_bce_loss(y, logits, 0.5), F.binary_cross_entropy_with_logits(logits, y))


def test_weighted_bce_is_the_numerator_and_weights_the_positives() -> None:
    logits = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    y = (torch.rand(2, 1, 4, 4) < 0.5).double()
    beta = 0.8
    w = torch.where(y == 1, 2 * beta, 2 * (1 - beta))
    expected = (w * F.binary_cross_entropy_with_logits(logits, y, reduction="none")).mean()
    torch.testing.assert_close(weighted_bce_loss(y, logits, beta), expected)
    # The normalised likelihood differs from the numerator by the normaliser (nonzero for beta != 1/2).
    numerator = -weighted_bce_loss(y, logits, beta) * y.numel()  # sum of log numerators
    assert (weighted_bernoulli_log_prob(y, logits, beta).sum() - numerator).abs() > 1e-3


def test_weighted_bernoulli_rejects_bad_input() -> None:
    logits = torch.zeros(1, 4)
    with pytest.raises(ValueError, match="exactly binary"):
        weighted_bernoulli_log_prob(torch.full((1, 4), 0.5), logits, 0.5)
    with pytest.raises(ValueError, match="beta"):
        weighted_bce_loss(torch.zeros(1, 4), logits, 1.0)


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
