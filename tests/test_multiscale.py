"""The multi-scale conditional flow: invertibility, exact log-det, conditioning, sampling."""

from __future__ import annotations

import pytest
import torch
from conftest import perturb_
from helpers import brute_force_logabsdet

from cnf_teach.distributions import gaussian_log_prob
from cnf_teach.flows import MultiScaleFlow
from cnf_teach.nets import ConvConditioner


def _flow(conditional: bool, coupling: str = "affine", levels: int = 2) -> MultiScaleFlow:
    g = ConvConditioner(3, 4, levels, upscale=2, hidden=8) if conditional else None
    flow = MultiScaleFlow(
        2, levels=levels, steps=2, conditioner=g, cond_channels=4 if conditional else 0, hidden=8, coupling=coupling
    )
    return flow


def _prepared(conditional: bool, coupling: str = "affine") -> tuple[MultiScaleFlow, torch.Tensor, torch.Tensor | None]:
    flow = _flow(conditional, coupling)
    y = torch.randn(3, 2, 8, 8)
    x = torch.randn(3, 3, 4, 4) if conditional else None
    flow.log_prob(y * 2 + 0.5, x)  # actnorm data-dependent initialisation
    perturb_(flow, 0.05)
    return flow.double().eval(), y.double(), None if x is None else x.double()


@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_round_trip(conditional: bool, coupling: str) -> None:
    flow, y, x = _prepared(conditional, coupling)
    hs = flow.features(x)
    latents, _ = flow.transform(y, hs)
    assert [t.shape for t in latents] == [(3, 4, 4, 4), (3, 16, 2, 2)]  # 8 factored out at level 0, 16 at top
    torch.testing.assert_close(flow.inverse_transform(latents, hs), y, atol=1e-10, rtol=0)


@pytest.mark.parametrize("conditional", [False, True])
def test_logdet_and_log_prob_match_the_jacobian(conditional: bool) -> None:
    flow, y, x = _prepared(conditional)
    hs = flow.features(x)

    def fn(v: torch.Tensor, i: int) -> torch.Tensor:
        latents, _ = flow.transform(v, [None if h is None else h[i : i + 1] for h in hs])
        return torch.cat([t.reshape(1, -1) for t in latents], dim=1)

    latents, logdet = flow.transform(y, hs)
    torch.testing.assert_close(logdet.detach(), brute_force_logabsdet(fn, y), atol=1e-8, rtol=1e-8)

    # log p(y|x) assembled by hand from the pieces: standard normal on the factored-out
    # eps, the (conditional) top prior on z_L, plus the log-det.
    top = flow.prior.log_prob(latents[-1], hs[-1]) if conditional else gaussian_log_prob(latents[-1])
    expected = gaussian_log_prob(latents[0]) + top + logdet
    torch.testing.assert_close(flow.log_prob(y, x), expected)


def test_conditioning_changes_log_prob_and_gradients_reach_every_parameter() -> None:
    flow, y, x = _prepared(True)
    lp1 = flow.log_prob(y, x)
    lp2 = flow.log_prob(y, x + 0.5)
    assert (lp1 - lp2).abs().min() > 1e-4
    flow.zero_grad()
    (-lp1.mean()).backward()
    missing = [n for n, p in flow.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert missing == []


def test_temperature_zero_is_the_deterministic_mean_path() -> None:
    flow, _, x = _prepared(True)
    s1 = flow.sample(x, temperature=0.0)
    s2 = flow.sample(x, temperature=0.0)
    torch.testing.assert_close(s1, s2, atol=0, rtol=0)
    # By hand: top latent = prior mean, factored-out half = split-prior mean (eps = 0).
    hs = flow.features(x)
    mean, _ = flow.prior.params(hs[-1])
    expected = flow.inverse_transform([torch.zeros(3, 4, 4, 4, dtype=torch.float64), mean], hs)
    torch.testing.assert_close(s1, expected)
    assert (flow.sample(x, 1.0) - s1).abs().max() > 1e-3


def test_sample_shapes_and_dtypes() -> None:
    flow, _, x = _prepared(True)
    s = flow.sample(x, 0.8)
    assert s.shape == (3, 2, 8, 8) and s.dtype == torch.float64
    assert torch.isfinite(s).all()
    unc, _, _ = _prepared(False)
    s = unc.sample(None, 0.5, shape=(5, 2, 8, 8))
    assert s.shape == (5, 2, 8, 8)
    lp = unc.log_prob(s)
    assert lp.shape == (5,) and torch.isfinite(lp).all()
    bpd = unc.bits_per_dim(s)
    torch.testing.assert_close(bpd, -lp / (128 * torch.log(torch.tensor(2.0, dtype=torch.float64))))


def test_training_lowers_the_nll() -> None:
    flow = _flow(False)
    # A moderate learning rate: at 1e-2 Adam overshoots and single steps bounce by tens of nats.
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    y = 0.3 * torch.randn(16, 2, 8, 8) + torch.linspace(-1, 1, 8).view(1, 1, 1, 8)
    losses = []
    for _ in range(40):
        loss = -flow.log_prob(y).mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Judge the mean of the last five steps, not a single (noisy) step.
    assert sum(losses[-5:]) / 5 < losses[0] - 80, losses
