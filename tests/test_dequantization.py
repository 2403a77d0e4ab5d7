"""Dequantization: bounds checked against exact discrete likelihoods computed by quadrature.

The "model" is a small fixed 2D flow (a perturbed ``VectorFlow``, rescaled so its mass
sits where the bins are). Its exact discrete likelihood $P(y) = \\int_{\\mathcal{V}(y)} p(v)\\,dv$
is computed with the midpoint rule on a fine grid, over each 2-bit bin square or each
binary quadrant; the quadrature is checked to sum to one over all regions. Every
dequantizer's bound must stay below it, the importance-weighted bound must approach it,
and a short optimisation of $q$ must shrink the gap.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import REPO, perturb_
from helpers import brute_force_logabsdet

from cnf_teach.dequantization import (
    BinaryDequantization,
    ConditionalAffine,
    ConditionalNoiseFlow,
    HalfLineSoftplus,
    SigmoidToBin,
    UniformDequantization,
    VariationalDequantization,
    dequantized_log_likelihood,
)
from cnf_teach.flows import Bijection
from cnf_teach.toy import VectorFlow

DT = torch.float64


# --- a fixed 2D model and its exact discrete likelihoods -------------------------------------------
def _model(scale: float) -> tuple[VectorFlow, Callable[[torch.Tensor], torch.Tensor]]:
    """A perturbed 2D flow on $z$, seen through $v = 1/2 + (z - \\bar z) / s$: $\\log p(v) = \\log p(z) + 2\\log s$.

    $\\bar z$ is the flow's mean (from samples), so that the mass of $v$ sits around $(1/2, 1/2)$.
    """
    torch.manual_seed(1)
    flow = perturb_(VectorFlow(dim=2, num_layers=2, hidden=16, actnorm=False), 0.3).to(DT).eval()
    for p in flow.parameters():
        p.requires_grad_(False)
    centre = flow.sample(num_samples=20_000).mean(0)

    def log_prob(v: torch.Tensor) -> torch.Tensor:
        return flow.log_prob((v.to(DT) - 0.5) * scale + centre) + 2 * math.log(scale)

    return flow, log_prob


def _grid_log_mass(log_prob, lo: float, hi: float, n: int, region_of) -> torch.Tensor:
    """Midpoint-rule $\\log\\int p$ over each region of $[lo, hi]^2$ (regions labelled 0..R-1 by ``region_of``)."""
    step = (hi - lo) / n
    t = lo + step * (torch.arange(n, dtype=DT) + 0.5)
    v1, v2 = torch.meshgrid(t, t, indexing="ij")
    v = torch.stack([v1.flatten(), v2.flatten()], dim=1)  # [n*n, 2]
    with torch.no_grad():
        logp = torch.cat([log_prob(chunk) for chunk in v.split(200_000)])
    labels = region_of(v)
    num = int(labels.max()) + 1
    out = torch.full((num,), -math.inf, dtype=DT)
    for r in range(num):
        out[r] = torch.logsumexp(logp[labels == r], 0) + 2 * math.log(step)
    return out


@pytest.fixture(scope="module")
def two_bit_case():
    """2-bit data in 2D: 16 bins $[k/4, (k+1)/4)^2$; exact $\\log P$ of each."""
    _, log_prob = _model(scale=10.0)
    exact = _grid_log_mass(log_prob, 0.0, 1.0, 512, lambda v: (v[:, 0] * 4).floor() * 4 + (v[:, 1] * 4).floor())
    ys = torch.tensor([[a, b] for a in range(4) for b in range(4)], dtype=torch.float32)  # label = 4a + b
    return log_prob, ys, exact


@pytest.fixture(scope="module")
def binary_case():
    """Binary data in 2D: the four quadrants around (1/2, 1/2); exact $\\log P$ of each."""
    _, log_prob = _model(scale=2.0)
    exact = _grid_log_mass(log_prob, 0.5 - 8.0, 0.5 + 8.0, 800, lambda v: (v[:, 0] > 0.5) * 2 + (v[:, 1] > 0.5))
    ys = torch.tensor([[a, b] for a in range(2) for b in range(2)], dtype=torch.float32)
    return log_prob, ys, exact


def test_quadrature_is_normalised(two_bit_case, binary_case) -> None:
    # Binary quadrants tile the plane: total mass 1 (the grid reaches about 10 model-sigmas).
    assert abs(binary_case[2].exp().sum().item() - 1.0) < 1e-3
    # 2-bit bins tile [0, 1)^2 only; most, not all, of the mass lies there.
    total = two_bit_case[2].exp().sum().item()
    assert 0.9 < total <= 1.0 + 1e-4


def _bound_stats(log_prob, deq, ys: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error of the one-sample bound for each row of ``ys``."""
    y = ys.repeat(samples, 1)  # [samples * R, 2]
    with torch.no_grad():
        b = dequantized_log_likelihood(log_prob, deq, y).view(samples, -1)
    return b.mean(0), b.std(0) / math.sqrt(samples)


def _iw_with_se(log_prob, deq, ys: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The importance-weighted bound with ``samples`` samples, and its Monte Carlo standard error.

    The error of $\\log \\frac1S\\sum_s w_s$ is about $\\mathrm{sd}(w) / (\\bar w \\sqrt S)$ (delta method),
    estimated from a second, independent batch of weights $w = p(v) / q(v \\mid y)$.
    """
    with torch.no_grad():
        iw = dequantized_log_likelihood(log_prob, deq, ys, num_samples=samples)
        log_w = dequantized_log_likelihood(log_prob, deq, ys.repeat(samples, 1)).view(samples, -1)
    w = (log_w - log_w.max(0).values).exp()
    return iw, w.std(0) / w.mean(0) / math.sqrt(samples)


# --- uniform -----------------------------------------------------------------------------------------
def test_uniform_bound_below_exact_and_importance_weighting_reaches_it(two_bit_case) -> None:
    log_prob, ys, exact = two_bit_case
    deq = UniformDequantization(num_bins=4)
    mean, se = _bound_stats(log_prob, deq, ys, 2000)
    gap = exact - mean
    assert (gap > 4 * se).all(), f"bound not below exact: gaps {gap}"
    assert gap.mean() > 0.01  # the density is far from flat on the bins, so the gap is real
    iw, se_log = _iw_with_se(log_prob, deq, ys, 2000)
    # Uniform q on the bin: the IW estimate is a Monte Carlo integral of p over the bin, so it must
    # match the quadrature up to its Monte Carlo error.
    held = exact > math.log(1e-3)  # in near-empty corners the quadrature itself is poor
    assert held.sum() >= 8
    assert ((iw - exact).abs() < 5 * se_log + 2e-3)[held].all(), (iw - exact, se_log)
    assert (iw > mean).all()


# --- variational ------------------------------------------------------------------------------------
def _bound_then_train(log_prob, deq, ys: torch.Tensor, exact: torch.Tensor, repeat: int) -> tuple[torch.Tensor, float]:
    """Check the one-sample bound is below exact, train q for 80 steps, check again; the gap must shrink 10x.

    Returns the trained bound per value and its mean gap to the exact log-likelihood.
    """
    mean0, se0 = _bound_stats(log_prob, deq, ys, 500)
    gap0 = (exact - mean0).mean().item()
    assert (exact - mean0 > -4 * se0).all()
    opt = torch.optim.Adam(deq.parameters(), lr=1e-2)
    y = ys.repeat(repeat, 1)
    for _ in range(80):
        loss = -dequantized_log_likelihood(log_prob, deq, y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    mean1, se1 = _bound_stats(log_prob, deq, ys, 500)
    gap1 = (exact - mean1).mean().item()
    assert (exact - mean1 > -4 * se1 - 1e-3).all(), "trained bound exceeds the exact likelihood"
    assert gap1 < 0.1 * gap0, f"gap {gap0:.4f} -> {gap1:.4f} nats"
    return mean1, gap1


def test_variational_bound_below_exact_and_gap_shrinks(two_bit_case) -> None:
    log_prob, ys, exact = two_bit_case
    torch.manual_seed(0)
    deq = VariationalDequantization(2, num_bins=4, steps=2, hidden=32, features=16, vector=True).to(DT)
    _, gap1 = _bound_then_train(log_prob, deq, ys, exact, repeat=32)
    assert gap1 >= -1e-3


def test_variational_q_integrates_to_one_over_its_bin() -> None:
    torch.manual_seed(0)
    deq = perturb_(VariationalDequantization(1, num_bins=4, hidden=16, features=8, vector=True), 0.5).to(DT).eval()
    # Integrate over w = logit of the position in the bin: v = (k + sigmoid(w)) / K, dv = sigma'(w) / K dw.
    w = torch.linspace(-40, 40, 40001, dtype=DT)
    for k in range(4):
        pos = torch.sigmoid(w).clamp(1e-15, 1 - 1e-15)
        v = ((k + pos) / 4)[:, None]
        y = torch.full_like(v, float(k))
        with torch.no_grad():
            q = deq.log_prob(v, y).exp()
        jac = pos * (1 - pos) / 4
        mass = torch.trapezoid(q * jac, w).item()
        assert abs(mass - 1.0) < 1e-4, (k, mass)


# --- binary ------------------------------------------------------------------------------------------
def test_binary_bound_below_exact_and_gap_shrinks(binary_case) -> None:
    log_prob, ys, exact = binary_case
    torch.manual_seed(0)
    deq = BinaryDequantization(2, steps=2, hidden=32, features=16, vector=True).to(DT)
    mean1, gap1 = _bound_then_train(log_prob, deq, ys, exact, repeat=64)
    # The importance-weighted bound (S = 1000) is tighter than the one-sample bound, and below exact
    # up to its Monte Carlo error.
    iw, se_log = _iw_with_se(log_prob, deq, ys, 1000)
    assert (iw > mean1).all() and (iw < exact + 4 * se_log).all(), (iw, mean1, exact, se_log)
    assert (exact - iw).mean() < 0.5 * gap1


@pytest.mark.parametrize("label", [0, 1])
def test_binary_q_integrates_to_one_over_its_half_line(label: int) -> None:
    torch.manual_seed(0)
    deq = perturb_(BinaryDequantization(1, cond_channels=1, hidden=16, features=8, vector=True), 0.5).to(DT).eval()
    # |v - 1/2| = exp(s) on a log grid: dv = exp(s) ds.
    s = torch.linspace(-40, 4, 40001, dtype=DT)
    sign = 1.0 if label == 1 else -1.0
    v = (0.5 + sign * s.exp())[:, None]
    y = torch.full_like(v, float(label))
    h = torch.full_like(v, 0.7)
    with torch.no_grad():
        q = deq.log_prob(v, y, h).exp()
    mass = torch.trapezoid(q * s.exp(), s).item()
    assert abs(mass - 1.0) < 1e-4, mass


def test_binary_samples_lie_in_the_half_line_of_their_label() -> None:
    deq = perturb_(BinaryDequantization(1, cond_channels=3, hidden=16, features=8), 0.5)
    y = (torch.rand(8, 1, 8, 8) < 0.3).float()
    h = torch.randn(8, 3, 8, 8)
    with torch.no_grad():
        v, log_q = deq(y, h)
    assert v.shape == y.shape and log_q.shape == (8,)
    assert torch.equal(v > 0.5, y == 1)
    assert torch.isfinite(log_q).all()


def test_uniform_and_variational_samples_lie_in_their_bin() -> None:
    y = torch.randint(0, 256, (4, 3, 4, 4), dtype=torch.uint8)
    for deq in (UniformDequantization(256), perturb_(VariationalDequantization(3, 256, hidden=8, features=8), 0.3)):
        with torch.no_grad():
            v, _ = deq(y)
        assert torch.equal(torch.floor(v * 256).long(), y.long())


def test_uniform_log_q_is_d_log_k_and_zero_outside() -> None:
    deq = UniformDequantization(4)
    y = torch.tensor([[1.0, 3.0]])
    v, log_q = deq(y)
    assert log_q.item() == pytest.approx(2 * math.log(4))
    assert deq.log_prob(v, y).item() == pytest.approx(2 * math.log(4))
    assert deq.log_prob(v + 0.25, y).item() == -math.inf


@pytest.mark.parametrize("num_bins", [2, 3, 7, 100, 255, 256])
@pytest.mark.parametrize("u", [0.0, 1 - 2**-24])
def test_uniform_log_q_of_its_own_edge_samples_is_finite(num_bins: int, u: float, monkeypatch) -> None:
    """Noise at the bottom (0) or top (largest float32 below 1) of a bin: every sample forward can
    make is inside its bin for log_prob, for every K (floor(v K) misjudged 53/100, for one)."""
    deq = UniformDequantization(num_bins)
    y = torch.arange(num_bins, dtype=torch.float32).reshape(1, 1, 1, num_bins)
    monkeypatch.setattr(torch, "rand_like", lambda t: torch.full_like(t, u))
    v, log_q = deq(y)
    assert torch.equal(deq.log_prob(v, y), log_q)


def test_uniform_log_prob_takes_a_bins_floor_as_inside() -> None:
    """v = 53/100 is the floor of bin 53 of 100, although 0.53 * 100 rounds to 52.99999... in float."""
    deq = UniformDequantization(100)
    assert deq.log_prob(torch.tensor([[53 / 100]]), torch.tensor([[53.0]])).item() == pytest.approx(math.log(100))
    assert deq.log_prob(torch.tensor([[53 / 100]]), torch.tensor([[52.0]])).item() == -math.inf


def test_log_prob_of_own_samples_matches_log_q() -> None:
    y = (torch.rand(2, 1, 4, 4) < 0.5).float()
    h = torch.randn(2, 2, 4, 4)
    deq = perturb_(BinaryDequantization(1, cond_channels=2, hidden=8, features=8), 0.1).double()
    v, log_q = deq(y, h)
    torch.testing.assert_close(deq.log_prob(v, y, h), log_q, rtol=1e-7, atol=1e-7)
    deq = perturb_(VariationalDequantization(1, num_bins=4, hidden=8, features=8), 0.1).double()
    y4 = torch.randint(0, 4, (2, 1, 4, 4)).double()
    v, log_q = deq(y4)
    torch.testing.assert_close(deq.log_prob(v, y4), log_q, rtol=1e-6, atol=1e-6)


def test_conditioning_on_h_changes_q() -> None:
    deq = perturb_(BinaryDequantization(1, cond_channels=2, hidden=8, features=8), 0.3)
    y = torch.ones(1, 1, 4, 4)
    v = torch.full((1, 1, 4, 4), 1.2)
    h = torch.randn(1, 2, 4, 4)
    assert (deq.log_prob(v, y, h) - deq.log_prob(v, y, h + 1)).abs().item() > 1e-3


# --- input errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0])
def test_binary_rejects_non_binary_input(bad: float) -> None:
    deq = BinaryDequantization(1, hidden=8, features=8)
    y = torch.zeros(1, 1, 4, 4)
    y[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="exactly binary"):
        deq(y)


def test_uniform_rejects_out_of_range_and_scaled_data() -> None:
    deq = UniformDequantization(256)
    with pytest.raises(ValueError, match=r"\{0, \.\.\., 255\}"):
        deq(torch.full((1, 3), 256.0))
    with pytest.raises(ValueError, match="non-integer"):
        deq(torch.full((1, 3), 0.3))
    with pytest.raises(ValueError, match="batched"):
        deq(torch.zeros(3))


def test_wrong_conditioning_is_reported() -> None:
    deq = BinaryDequantization(1, cond_channels=2, hidden=8, features=8)
    y = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="pass h"):
        deq(y)
    with pytest.raises(ValueError, match="resolution of y"):
        deq(y, torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="num_samples"):
        dequantized_log_likelihood(lambda v: v.sum((1, 2, 3)), deq, y, torch.zeros(1, 2, 4, 4), num_samples=0)


# --- the new bijections: inverse and brute-force log-det ---------------------------------------------
def _cases() -> dict[str, tuple[Bijection, torch.Tensor, torch.Tensor | None]]:
    b = 3
    return {
        "sigmoid_to_bin": (SigmoidToBin(4), torch.randn(b, 2, 2, 2), torch.randint(0, 4, (b, 2, 2, 2)).float()),
        "half_line_softplus": (HalfLineSoftplus(), torch.randn(b, 5), (torch.rand(b, 5) < 0.5).float()),
        "conditional_affine_vector": (
            ConditionalAffine(3, 4, hidden=8, vector=True),
            torch.randn(b, 3),
            torch.randn(b, 4),
        ),
        "conditional_affine_image": (
            ConditionalAffine(2, 3, hidden=8),
            torch.randn(b, 2, 4, 4),
            torch.randn(b, 3, 4, 4),
        ),
        "noise_flow_vector": (
            ConditionalNoiseFlow(3, 4, steps=2, hidden=8, vector=True),
            torch.randn(b, 3),
            torch.randn(b, 4),
        ),
        "noise_flow_vector_1d": (
            ConditionalNoiseFlow(1, 2, steps=2, hidden=8, vector=True),
            torch.randn(b, 1),
            torch.randn(b, 2),
        ),
        "noise_flow_image": (
            ConditionalNoiseFlow(1, 2, steps=2, hidden=8),
            torch.randn(b, 1, 4, 4),
            torch.randn(b, 2, 4, 4),
        ),
    }


@pytest.mark.parametrize("name", sorted(_cases()))
def test_new_bijections_invert_and_logdet_matches_jacobian(name: str) -> None:
    layer, w, h = _cases()[name]
    layer = perturb_(layer, 0.2).double().eval()
    w, h = w.double(), h.double()
    with torch.no_grad():
        v, logdet = layer(w, h)
        back = layer.inverse(v, h)
    assert logdet.shape == (w.shape[0],)
    torch.testing.assert_close(back, w, atol=1e-8, rtol=0)

    def fn(x: torch.Tensor, i: int) -> torch.Tensor:
        return layer(x, h[i : i + 1])[0]

    torch.testing.assert_close(logdet, brute_force_logabsdet(fn, w), atol=1e-8, rtol=1e-8)


# --- the benchmark's smoke mode --------------------------------------------------------------------
def test_binary_vs_uniform_benchmark_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # In-process (the script's main) rather than a subprocess: saves a second interpreter and torch import.
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("binary_vs_uniform", REPO / "benchmarks" / "binary_vs_uniform.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "binary_vs_uniform", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    out = tmp_path / "bvu.json"
    module.main(["--smoke", "--device", "cpu", "--threads", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "| uniform |" in printed and "| binary |" in printed
    rows = {r["dequantization"]: r for r in json.loads(out.read_text())["rows"]}
    for name in ("uniform", "binary"):
        bpd, one = rows[name]["bpd"], rows[name]["bpd_one_sample"]
        assert math.isfinite(bpd) and 0 < bpd < 2, rows[name]
        assert bpd <= one + 0.02  # the importance-weighted bound is the tighter one, up to sampling noise
