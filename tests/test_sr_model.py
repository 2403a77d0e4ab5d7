"""The SR CNF and its factorized baseline: sizes, likelihoods, invertibility, sampling, conditioning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from conftest import perturb_

from cnf_teach.baselines import discretized_logistic_log_prob
from cnf_teach.super_resolution import (
    SRConfig,
    SuperResolutionBaseline,
    SuperResolutionCNF,
    count_parameters,
)


@pytest.mark.parametrize("preset", ["paper-imagenet32", "paper-imagenet64", "tiny"])
def test_baseline_parameter_count_matches_the_cnf(preset: str) -> None:
    config = SRConfig.preset(preset)
    cnf, base = count_parameters(config, "cnf"), count_parameters(config, "baseline")
    print(f"{preset}: CNF {cnf:,} parameters, baseline {base:,} ({100 * (base / cnf - 1):+.1f}%)")
    assert abs(base / cnf - 1) < 0.05
    if preset.startswith("paper"):
        assert 35e6 < cnf < 45e6  # RRDB (24.1M) + flow with 512-channel couplings


def test_paper_presets_follow_tables_5_6_8() -> None:
    for config in (SRConfig.paper_imagenet32(), SRConfig.paper_imagenet64()):
        assert (config.levels, config.steps, config.hidden) == (2, 8, 512)
        assert (config.rrdb_blocks, config.rrdb_growth, config.baseline_growth, config.rrdb_features) == (
            16,
            32,
            55,
            128,
        )
        assert (config.lr, config.batch_size, config.train_steps, config.scale) == (1e-4, 64, 200_000, 2)
        assert config.dequantization == "uniform"
    assert SRConfig.paper_imagenet32().patch == 32 and SRConfig.paper_imagenet64().patch == 64
    with pytest.raises(ValueError, match="unknown SR config 'huge'"):
        SRConfig.preset("huge")
    with pytest.raises(ValueError, match="power of two"):
        SRConfig(scale=3)


def _tiny(**kw: object) -> SRConfig:
    return dataclasses.replace(SRConfig.tiny(), rrdb_blocks=1, steps=2, hidden=16, **kw)


def _pair(b: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 256, (b, 3, 2 * size, 2 * size))
    x = torch.randint(0, 256, (b, 3, size, size))
    return y, x


def _trained_like(model: torch.nn.Module, y: torch.Tensor, x: torch.Tensor) -> torch.nn.Module:
    model.train()
    model.log_prob(y, x)  # actnorm's data-dependent initialisation
    perturb_(model, 0.02)
    return model.eval()


def test_cnf_is_invertible_and_log_prob_is_the_dequantization_bound() -> None:
    y, x = _pair()
    model = _trained_like(SuperResolutionCNF(_tiny()), y, x)
    hs = model.features(x)
    v = (y + torch.rand(y.shape)) / 256
    latents, logdet = model.flow.transform(v - 0.5, hs)
    back = model.flow.inverse_transform(latents, hs) + 0.5
    assert torch.allclose(back, v, atol=1e-5)
    # Uniform dequantization: log P(y|x) >= log p(v|x) - D log 256, with the same v.
    torch.manual_seed(5)
    lp = model.log_prob(y, x)
    torch.manual_seed(5)
    v2 = (y + torch.rand(y.shape)) / 256
    expected = model.log_density(v2, hs) - y[0].numel() * math.log(256)
    assert torch.allclose(lp, expected, atol=1e-3)
    assert lp.shape == (2,) and torch.isfinite(lp).all()
    bpd = model.bits_per_dim(y, x)
    assert 4.0 < bpd.mean().item() < 20.0  # random images are near-incompressible: about 8 bits


def test_conditioning_matters() -> None:
    y, x = _pair()
    model = _trained_like(SuperResolutionCNF(_tiny()), y, x)
    x_other = torch.randint(0, 256, x.shape)
    torch.manual_seed(1)
    a = model.log_prob(y, x)
    torch.manual_seed(1)
    b = model.log_prob(y, x_other)
    assert (a - b).abs().min() > 1e-3
    assert not torch.equal(model.sample(x, 0.0), model.sample(x_other, 0.0))


def test_temperature_zero_is_deterministic_and_samples_are_uint8_images() -> None:
    y, x = _pair(b=3)
    model = _trained_like(SuperResolutionCNF(_tiny()), y, x)
    s0, s0b = model.sample(x, 0.0), model.sample(x, 0.0)
    assert s0.dtype == torch.uint8 and s0.shape == (3, 3, 16, 16)
    assert torch.equal(s0, s0b)
    s1, s1b = model.sample(x, 1.0), model.sample(x, 1.0)
    assert not torch.equal(s1, s1b)
    # Lower temperature, samples closer to the tau = 0 path.
    spread = [(model.sample(x, t).float() - s0.float()).abs().mean().item() for t in (0.5, 1.0)]
    assert spread[0] < spread[1]


def test_variational_dequantization_option_trains_the_dequantizer() -> None:
    y, x = _pair()
    model = SuperResolutionCNF(_tiny(dequantization="variational"))
    loss = model.bits_per_dim(y, x).mean()
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.dequantizer.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert len(model.features(x)) == 3  # two levels + one map at y's resolution for q(v | y, x)


def test_baseline_is_an_exact_discretized_logistic() -> None:
    y, x = _pair()
    model = perturb_(SuperResolutionBaseline(_tiny()), 0.02)
    mean, log_scale = model.params(x)
    assert mean.shape == y.shape == log_scale.shape
    assert torch.allclose(model.log_prob(y, x), discretized_logistic_log_prob(y, mean, log_scale, 256))
    mode = model.mode(x)
    assert mode.dtype == torch.uint8 and mode.shape == y.shape
    assert torch.equal(model.predict(x), mode)  # the baseline's SR output is its mode
    # One pixel's probabilities over all 256 values sum to one.
    probs = torch.stack(
        [
            discretized_logistic_log_prob(torch.full((1, 1), k), mean[:1, :1, 0, 0], log_scale[:1, :1, 0, 0])
            for k in range(256)
        ]
    ).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-4)


def test_both_models_learn_on_a_repeated_batch() -> None:
    y, x = _pair(b=4)
    y = (x.repeat_interleave(2, 2).repeat_interleave(2, 3).float() * 0.5 + 64).round()  # y depends on x
    for model in (SuperResolutionCNF(_tiny()), SuperResolutionBaseline(_tiny())):
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        first = None
        for _ in range(15):
            loss = model.bits_per_dim(y, x).mean()
            first = loss.item() if first is None else first
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < first - 0.3, type(model).__name__


def test_shape_errors_name_the_fix() -> None:
    model = SuperResolutionCNF(_tiny())
    with pytest.raises(ValueError, match=r"must be x .* upscaled 2x"):
        model.log_prob(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="pad the image"):
        model.sample(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match=r"integers|0, 255|\{0"):
        model.log_prob(torch.full((1, 3, 16, 16), 300.0), torch.zeros(1, 3, 8, 8))
