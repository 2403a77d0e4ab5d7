"""Every bijection: exact inverse, and log-det equal to a brute-force autograd Jacobian.

Tolerances: round trips within 1e-4 (absolute) in float32 and 1e-10 in float64; log-dets
compared in float64 within 1e-8.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from conftest import perturb_
from helpers import brute_force_logabsdet

from cnf_teach.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    Bijection,
    ElementwiseAffine,
    FlowSequence,
    FlowStep,
    InvertibleConv1x1,
    Logit,
    Permute,
    Reverse,
    Sigmoid,
    SplitPrior,
    Squeeze,
)

B, C, H, W = 3, 4, 4, 4
Case = Callable[[], tuple[Bijection, torch.Tensor, torch.Tensor | None]]


def _img(c: int = C) -> torch.Tensor:
    return torch.randn(B, c, H, W)


def _actnorm() -> tuple[Bijection, torch.Tensor, None]:
    layer = ActNorm(C)
    layer(_img() * 3 + 1)  # data-dependent initialisation on a first batch
    return layer, _img(), None


CASES: dict[str, Case] = {
    "elementwise_affine": lambda: (ElementwiseAffine((C, 1, 1), 0.3, -0.2), _img(), None),
    "sigmoid": lambda: (Sigmoid(), _img(), None),
    "logit": lambda: (Logit(), torch.rand(B, C, H, W) * 0.9 + 0.05, None),
    "actnorm": _actnorm,
    "actnorm_vector": lambda: (ActNorm(5), torch.randn(B, 5), None),
    "conv1x1_plain": lambda: (InvertibleConv1x1(C, lu=False), _img(), None),
    "conv1x1_lu": lambda: (InvertibleConv1x1(C, lu=True), _img(), None),
    "squeeze": lambda: (Squeeze(), _img(), None),
    "reverse": lambda: (Reverse(C), _img(), None),
    "permute": lambda: (Permute.random(C), _img(), None),
    "affine_coupling": lambda: (AffineCoupling(C, hidden=8), _img(), None),
    "affine_coupling_cond": lambda: (AffineCoupling(C, cond_channels=3, hidden=8), _img(), torch.randn(B, 3, H, W)),
    "affine_coupling_exp_tanh": lambda: (AffineCoupling(C, hidden=8, scale="exp_tanh"), _img(), None),
    "affine_coupling_mlp_cond": lambda: (
        AffineCoupling(3, cond_channels=2, hidden=8, net="mlp"),
        torch.randn(B, 3),
        torch.randn(B, 2),
    ),
    "additive_coupling": lambda: (AdditiveCoupling(C, hidden=8), _img(), None),
    "additive_coupling_cond": lambda: (
        AdditiveCoupling(C, cond_channels=2, hidden=8),
        _img(),
        torch.randn(B, 2, H, W),
    ),
    "split_prior": lambda: (SplitPrior(C, hidden=8), _img(), None),
    "split_prior_cond": lambda: (SplitPrior(C, cond_channels=3, hidden=8), _img(), torch.randn(B, 3, H, W)),
    "flow_step_cond": lambda: (FlowStep(C, cond_channels=2, hidden=8), _img(), torch.randn(B, 2, H, W)),
    "flow_sequence": lambda: (
        FlowSequence([ActNorm(C), InvertibleConv1x1(C), AffineCoupling(C, hidden=8), Reverse(C)]),
        _img(),
        None,
    ),
}


def _build(name: str, dtype: torch.dtype) -> tuple[Bijection, torch.Tensor, torch.Tensor | None]:
    layer, y, h = CASES[name]()
    perturb_(layer)  # make zero-initialised networks non-trivial
    layer = layer.to(dtype).eval()
    y = y.to(dtype)
    h = None if h is None else h.to(dtype)
    return layer, y, h


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)])
def test_inverse_of_forward_is_identity(name: str, dtype: torch.dtype, tol: float) -> None:
    layer, y, h = _build(name, dtype)
    with torch.no_grad():
        z, logdet = layer(y, h)
        y_back = layer.inverse(z, h)
    assert z.dtype == dtype and logdet.dtype == dtype
    assert logdet.shape == (y.shape[0],)
    assert z.numel() == y.numel()
    torch.testing.assert_close(y_back, y, atol=tol, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_logdet_matches_autograd_jacobian(name: str) -> None:
    layer, y, h = _build(name, torch.float64)

    def fn(v: torch.Tensor, i: int) -> torch.Tensor:
        return layer(v, None if h is None else h[i : i + 1])[0]

    _, logdet = layer(y, h)
    expected = brute_force_logabsdet(fn, y)
    torch.testing.assert_close(logdet.detach(), expected, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("name", ["affine_coupling_cond", "additive_coupling_cond", "split_prior_cond"])
def test_conditioning_changes_output(name: str) -> None:
    layer, y, h = _build(name, torch.float64)
    z1, _ = layer(y, h)
    z2, _ = layer(y, h + 1.0)
    assert (z1 - z2).abs().max() > 1e-3


def test_actnorm_initialises_to_zero_mean_unit_variance() -> None:
    layer = ActNorm(C)
    y = torch.randn(64, C, H, W) * torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, C, 1, 1) + 5
    z, _ = layer(y)
    assert bool(layer.initialized)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(C), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(C), atol=1e-4, rtol=0)
    # A second batch does not re-initialise.
    bias = layer.bias.clone()
    layer(torch.randn(8, C, H, W))
    torch.testing.assert_close(layer.bias, bias)


def test_lu_and_plain_conv1x1_agree_on_the_same_matrix() -> None:
    lu = perturb_(InvertibleConv1x1(C, lu=True)).double()
    plain = InvertibleConv1x1(C, lu=False).double()
    with torch.no_grad():
        weight, logabsdet = lu.weight_and_logabsdet()
        plain.weight.copy_(weight)
    y = torch.randn(2, C, H, W, dtype=torch.float64)
    z_lu, ld_lu = lu(y)
    z_plain, ld_plain = plain(y)
    torch.testing.assert_close(z_lu, z_plain)
    torch.testing.assert_close(ld_lu, ld_plain)


def test_couplings_leave_the_first_half_untouched() -> None:
    layer, y, _ = _build("affine_coupling", torch.float64)
    z, _ = layer(y)
    torch.testing.assert_close(z[:, : C // 2], y[:, : C // 2])
    assert (z[:, C // 2 :] - y[:, C // 2 :]).abs().max() > 1e-3


def test_squeeze_moves_2x2_blocks_into_channels() -> None:
    y = torch.arange(16.0).view(1, 1, 4, 4)
    z, _ = Squeeze()(y)
    assert z.shape == (1, 4, 2, 2)
    # The top-left 2x2 block [[0, 1], [4, 5]] becomes the four channels of pixel (0, 0).
    assert z[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]


@pytest.mark.parametrize("lu", [True, False])
def test_conv1x1_inverse_cached_in_eval_and_refreshed_when_parameters_change(lu: bool) -> None:
    layer = perturb_(InvertibleConv1x1(C, lu=lu))
    z = _img()
    layer.train()
    layer.inverse(z)
    assert layer._inverse_cache is None  # training never caches
    layer.eval()
    with torch.no_grad():
        first = layer.inverse(z)
        cached = layer._inverse_cache[1]
        assert torch.equal(layer.inverse(z), first) and layer._inverse_cache[1] is cached  # reused
        param = next(layer.parameters())
        param.add_(0.01)  # an in-place update (an optimizer step, load_state_dict) bumps the version
        changed = layer.inverse(z)
        assert layer._inverse_cache[1] is not cached
        reference = torch.linalg.inv(layer.weight_and_logabsdet()[0])
        assert torch.allclose(changed, torch.einsum("oc,bchw->bohw", reference, z), atol=1e-6)
        assert not torch.allclose(changed, first)
        assert torch.allclose(layer(changed)[0], z, atol=1e-5)  # still the inverse of the new forward
    out = layer.inverse(z)  # eval mode with gradients: no cache, gradients flow
    assert out.requires_grad
    layer.train()
    assert layer._inverse_cache is None
