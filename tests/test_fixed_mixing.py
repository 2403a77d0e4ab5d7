"""Fixed channel mixing (reverse, shuffle, rotation) against independent computations, and its use in flows.

Each fixed layer is checked against a Jacobian taken by autograd (its log-determinant, 0) and
against the map written out by hand (a loop over pixels, a gathered index); its inverse round
trips in float32 and float64. The flows built with ``mixing=...`` keep their log-likelihood
equal to the brute-force change of variables, and the default (``"learned"``) builds exactly
the model it built before the option existed.
"""

from __future__ import annotations

import pytest
import torch
from conftest import perturb_
from helpers import brute_force_logabsdet

from cnf_teach.flows import (
    MIXINGS,
    FixedRotation,
    FlowStep,
    InvertibleConv1x1,
    MultiScaleFlow,
    Permute,
    Reverse,
    make_mixing,
)


def _fixed(kind: str, channels: int) -> torch.nn.Module:
    return {"reverse": Reverse, "shuffle": Permute.random, "rotation": FixedRotation}[kind](channels)


@pytest.mark.parametrize("channels", [2, 5, 12])
def test_rotation_is_orthogonal_with_determinant_one(channels: int) -> None:
    q = FixedRotation(channels).weight.double()
    torch.testing.assert_close(q.T @ q, torch.eye(channels, dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.linalg.det(q), torch.tensor(1.0, dtype=torch.float64), atol=1e-5, rtol=0)


def test_rotation_equals_a_loop_over_pixels() -> None:
    layer = FixedRotation(6)
    y = torch.randn(3, 6, 4, 5)
    z, _ = layer(y)
    assert z.dtype == torch.float32  # Q is kept in float64 but used in the input's precision
    expected = torch.empty_like(y, dtype=torch.float64)
    for i in range(y.shape[2]):
        for j in range(y.shape[3]):
            expected[:, :, i, j] = y[:, :, i, j].double() @ layer.weight.T  # z = Q y per pixel
    torch.testing.assert_close(z.double(), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", ["reverse", "shuffle", "rotation"])
def test_logdet_is_zero_as_the_autograd_jacobian_says(kind: str) -> None:
    layer = _fixed(kind, 4).double()
    y = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    _, logdet = layer(y)
    expected = brute_force_logabsdet(lambda v, i: layer(v)[0], y)  # [B], from the 24 x 24 Jacobian
    torch.testing.assert_close(logdet, expected, atol=1e-10, rtol=0)
    torch.testing.assert_close(logdet, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("kind", ["reverse", "shuffle"])
def test_permutations_move_channels_without_mixing(kind: str) -> None:
    layer = _fixed(kind, 5)
    y = torch.arange(5.0).reshape(1, 5, 1, 1).expand(2, 5, 3, 3)
    z, _ = layer(y)
    assert sorted(z[0, :, 0, 0].tolist()) == list(range(5))  # the same values, reordered
    if kind == "reverse":
        assert z[0, :, 1, 2].tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]


@pytest.mark.parametrize("kind", ["reverse", "shuffle", "rotation"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverse_round_trips(kind: str, dtype: torch.dtype) -> None:
    layer = _fixed(kind, 8).to(dtype)
    for shape in [(3, 8, 4, 4), (3, 8)]:  # images and vectors
        y = torch.randn(*shape, dtype=dtype)
        z, _ = layer(y)
        assert z.dtype == dtype
        tol = 1e-6 if dtype == torch.float32 else 1e-13
        torch.testing.assert_close(layer.inverse(z), y, atol=tol, rtol=0)


def test_rotation_is_a_saved_buffer_without_gradient() -> None:
    layer = FixedRotation(4)
    assert list(layer.parameters()) == []
    assert set(layer.state_dict()) == {"weight"}
    other = FixedRotation(4)
    assert not torch.equal(other.weight, layer.weight)
    other.load_state_dict(layer.state_dict())
    y = torch.randn(2, 4, 2, 2)
    torch.testing.assert_close(other(y)[0], layer(y)[0], atol=0, rtol=0)


def test_rotation_refuses_the_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match="build it with num_channels=3"):
        FixedRotation(4)(torch.randn(2, 3, 2, 2))


def test_make_mixing_names_every_choice() -> None:
    built = {m: type(make_mixing(m, 4)) for m in MIXINGS}
    assert built == {
        "learned": InvertibleConv1x1,
        "reverse": Reverse,
        "shuffle": Permute,
        "rotation": FixedRotation,
    }
    with pytest.raises(ValueError, match="mixing must be one of"):
        FlowStep(4, hidden=8, mixing="swap")  # type: ignore[arg-type]


@pytest.mark.parametrize("mixing", MIXINGS)
def test_flow_log_prob_is_the_change_of_variables(mixing: str) -> None:
    flow = MultiScaleFlow(1, levels=2, steps=2, hidden=8, prior_hidden=4, mixing=mixing).double()
    y = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    flow.log_prob(y)  # actnorm's data-dependent initialisation
    perturb_(flow)  # zero-initialised coupling and prior nets made non-trivial
    flow.eval()

    def flat(v: torch.Tensor, i: int) -> torch.Tensor:
        latents, _ = flow.transform(v, [None, None])
        return torch.cat([z.reshape(1, -1) for z in latents], dim=1)

    _, logdet = flow.transform(y, [None, None])
    # The split prior's standardisation is part of transform's log-det (its -sum log sigma).
    torch.testing.assert_close(logdet, brute_force_logabsdet(flat, y), atol=1e-8, rtol=1e-8)
    latents, _ = flow.transform(y, [None, None])
    torch.testing.assert_close(flow.inverse_transform(latents, [None, None]), y, atol=1e-10, rtol=0)


def test_default_builds_the_same_model_as_before() -> None:
    torch.manual_seed(1)
    default = MultiScaleFlow(1, levels=2, steps=2, hidden=8, prior_hidden=4)
    torch.manual_seed(1)
    learned = MultiScaleFlow(1, levels=2, steps=2, hidden=8, prior_hidden=4, mixing="learned")
    a, b = default.state_dict(), learned.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(".layers.1.lower" in k for k in a)  # the learned LU-parametrised 1x1 convolution


def test_fixed_rotation_saves_the_learned_convolutions_parameters() -> None:
    channels_per_level = [4, 8]  # 1 channel squeezed to 4, split to 2, squeezed to 8
    steps = 3
    sizes = {}
    for mixing in ("learned", "rotation"):
        flow = MultiScaleFlow(1, levels=2, steps=steps, hidden=8, prior_hidden=4, mixing=mixing)
        sizes[mixing] = sum(p.numel() for p in flow.parameters())
    # Each LU 1x1 convolution trains L, U (stored as full C x C matrices) and log|s|: 2 C^2 + C.
    assert sizes["learned"] - sizes["rotation"] == steps * sum(2 * c * c + c for c in channels_per_level)


def test_rotation_flow_trains() -> None:
    flow = MultiScaleFlow(1, levels=2, steps=2, hidden=8, prior_hidden=4, mixing="rotation")
    y = torch.randn(8, 1, 8, 8)
    rotations = [m.weight.clone() for m in flow.modules() if isinstance(m, FixedRotation)]
    assert len(rotations) == 4
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = -flow.log_prob(y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    after = [m.weight for m in flow.modules() if isinstance(m, FixedRotation)]
    assert all(torch.equal(a, b) for a, b in zip(rotations, after, strict=True))  # never trained
