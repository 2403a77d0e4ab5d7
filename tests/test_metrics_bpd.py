"""Bits per dimension: what each helper counts, checked on cases with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from cnf_teach.baselines import discretized_logistic_log_prob
from cnf_teach.dequantization import UniformDequantization, dequantized_log_likelihood
from cnf_teach.metrics import dequantized_bits_per_dim, nats_to_bits_per_dim


def test_uniform_model_on_8bit_data_has_exactly_8_bits_per_dim() -> None:
    # The uniform density on [0, 1)^D: log p(v) = 0 wherever v lands.
    y = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8).double()
    num_dims = 3 * 4 * 4

    def log_prob(v: torch.Tensor) -> torch.Tensor:
        assert ((v >= 0) & (v < 1)).all()
        return torch.zeros(v.shape[0], dtype=torch.float64)

    bound = dequantized_log_likelihood(log_prob, UniformDequantization(256), y, num_samples=3)
    eight = torch.full((5,), 8.0, dtype=torch.float64)
    torch.testing.assert_close(nats_to_bits_per_dim(bound, num_dims), eight, atol=1e-12, rtol=0)
    # The same figure from the density alone, with the bin width 1/256 accounted for.
    assert torch.equal(dequantized_bits_per_dim(torch.zeros(5), num_dims, 256), torch.full((5,), 8.0))  # exact
    # And from the exact probability 256^-D of the discrete uniform distribution.
    exact = torch.full((5,), -num_dims * math.log(256.0), dtype=torch.float64)
    torch.testing.assert_close(nats_to_bits_per_dim(exact, num_dims), eight, atol=1e-12, rtol=0)


def test_wide_discretized_logistic_costs_8_bits_plus_log2_of_its_flatness() -> None:
    # A logistic much wider than [0, 1] is nearly flat there, at its peak density 1 / (4 s):
    # each interior bin of width 1/256 gets about 1 / (4 s 256), i.e. 8 + log2(4 s) bits.
    s = math.exp(4.0)
    y = torch.randint(1, 255, (2, 10))
    lp = discretized_logistic_log_prob(y, torch.full((2, 10), 0.5), torch.full((2, 10), 4.0))
    bpd = nats_to_bits_per_dim(lp, 10)
    torch.testing.assert_close(bpd, torch.full((2,), 8 + math.log2(4 * s)), atol=1e-3, rtol=0)


def test_bin_width_correction() -> None:
    lp = torch.tensor([-10.0])
    base = nats_to_bits_per_dim(lp, 4).item()
    assert base == pytest.approx(10 / (4 * math.log(2)))
    assert dequantized_bits_per_dim(lp, 4, 256).item() == pytest.approx(base + 8)
    assert dequantized_bits_per_dim(lp, 4, 2).item() == pytest.approx(base + 1)  # binary data in [0, 1)
    assert dequantized_bits_per_dim(lp, 4, 256, data_range=256.0).item() == pytest.approx(base)
    with pytest.raises(ValueError):
        dequantized_bits_per_dim(lp, 4, 1)
    with pytest.raises(ValueError):
        nats_to_bits_per_dim(lp, 0)
