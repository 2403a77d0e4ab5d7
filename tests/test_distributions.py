"""Base densities and the conditional prior; flow densities integrate to one."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import perturb_

from cnf_teach.distributions import ConditionalGaussianPrior, DiagonalGaussian, StandardNormal, gaussian_log_prob
from cnf_teach.flows import ElementwiseAffine, FlowSequence, Logit
from cnf_teach.toy import VectorFlow


def test_gaussian_log_prob_matches_torch_distributions() -> None:
    z = torch.randn(5, 3)
    mean, log_std = torch.randn(3), 0.3 * torch.randn(3)
    ref = torch.distributions.Normal(mean, log_std.exp()).log_prob(z).sum(1)
    torch.testing.assert_close(gaussian_log_prob(z, mean, log_std), ref)


def test_temperature_scales_the_spread() -> None:
    for dist in (StandardNormal((2,)), DiagonalGaussian((2,))):
        assert dist.sample(20000, temperature=0.5).std().item() == pytest.approx(0.5, abs=0.02)
        assert dist.sample(3, temperature=0.0).abs().max() == 0


def test_conditional_prior_depends_on_h_and_samples_its_mean_at_tau_0() -> None:
    prior = perturb_(ConditionalGaussianPrior(2, 3, hidden=8))
    h = torch.randn(4, 3, 5, 5)
    z = torch.randn(4, 2, 5, 5)
    assert (prior.log_prob(z, h) - prior.log_prob(z, h + 1)).abs().min() > 1e-4
    mean, log_std = prior.params(h)
    torch.testing.assert_close(prior.sample(h, 0.0), mean)
    torch.testing.assert_close(prior.log_prob(z, h), gaussian_log_prob(z, mean, log_std))
    vec = perturb_(ConditionalGaussianPrior(2, 3, hidden=8, vector=True))
    assert vec.sample(torch.randn(7, 3)).shape == (7, 2)


def test_1d_flow_density_integrates_to_one() -> None:
    # p(y) on (0, 1): logit, then an affine map, onto a standard normal.
    flow = FlowSequence([Logit(eps=1e-12), ElementwiseAffine((1,), shift=0.4, log_scale=-0.3)]).double()
    y = torch.linspace(1e-7, 1 - 1e-7, 200001, dtype=torch.float64)[:, None]
    z, logdet = flow(y)
    density = torch.exp(gaussian_log_prob(z) + logdet)
    total = torch.trapezoid(density, y[:, 0]).item()
    assert abs(total - 1) < 1e-4


def test_2d_conditional_flow_density_integrates_to_one() -> None:
    model = perturb_(VectorFlow(dim=2, cond_dim=1, num_layers=4, hidden=16), 0.1).double().eval()
    grid = torch.linspace(-8, 8, 401, dtype=torch.float64)
    yy = torch.cartesian_prod(grid, grid)  # [N, 2]
    for xv in (-0.5, 0.7):
        x = torch.full((len(yy), 1), xv, dtype=torch.float64)
        with torch.no_grad():
            density = model.log_prob(yy, x).exp().view(401, 401)
        total = torch.trapezoid(torch.trapezoid(density, grid, dim=1), grid).item()
        assert abs(total - 1) < 1e-2, total


def test_standard_normal_density_value() -> None:
    assert abs(StandardNormal((1,)).log_prob(torch.zeros(1, 1)).item() + 0.5 * math.log(2 * math.pi)) < 1e-6
