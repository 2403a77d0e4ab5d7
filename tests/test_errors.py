"""Bad input gets a ValueError that names the problem and the fix."""

from __future__ import annotations

import pytest
import torch

from cnf_teach.flows import ActNorm, AffineCoupling, InvertibleConv1x1, MultiScaleFlow, Squeeze
from cnf_teach.nets import ConvConditioner
from cnf_teach.toy import VectorFlow


def _flow() -> MultiScaleFlow:
    return MultiScaleFlow(3, levels=2, steps=1, conditioner=ConvConditioner(3, 4, 2), cond_channels=4, hidden=8)


def test_spatial_size_not_divisible_by_2_pow_L() -> None:
    with pytest.raises(ValueError, match=r"not divisible by 2\*\*levels = 4.*pad or crop"):
        _flow().log_prob(torch.randn(1, 3, 6, 8), torch.randn(1, 3, 6, 8))


def test_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match=r"built for 3 channel\(s\) but y has 1.*in_channels=1"):
        _flow().log_prob(torch.randn(1, 1, 8, 8), torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="ActNorm was built for 4 channels"):
        ActNorm(4)(torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match="num_channels=3"):
        InvertibleConv1x1(4)(torch.randn(1, 3, 2, 2))


def test_conditioning_features_of_the_wrong_size() -> None:
    layer = AffineCoupling(4, cond_channels=2, hidden=8)
    with pytest.raises(ValueError, match=r"h have shape \(1, 2, 3, 3\).*interpolate"):
        layer(torch.randn(1, 4, 4, 4), torch.randn(1, 2, 3, 3))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(1, 4, 4, 4), torch.randn(1, 5, 4, 4))
    with pytest.raises(ValueError, match="needs h"):
        layer(torch.randn(1, 4, 4, 4))
    with pytest.raises(ValueError, match="unconditional"):
        AffineCoupling(4, hidden=8)(torch.randn(1, 4, 4, 4), torch.randn(1, 2, 4, 4))
    # Conditioning input of the wrong resolution for the whole flow.
    with pytest.raises(ValueError, match="conditioning features h"):
        _flow().log_prob(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_log_prob_input(bad: float) -> None:
    y = torch.randn(2, 3, 8, 8)
    y[1, 0, 2, 3] = bad
    with pytest.raises(ValueError, match="y contains 1 NaN/inf"):
        _flow().log_prob(y, torch.randn(2, 3, 8, 8))
    v = torch.randn(4, 2)
    v[0, 0] = bad
    with pytest.raises(ValueError, match="NaN/inf"):
        VectorFlow(2).log_prob(v)


def test_squeeze_odd_size_and_missing_x() -> None:
    with pytest.raises(ValueError, match="divisible by 2"):
        Squeeze()(torch.randn(1, 1, 3, 4))
    with pytest.raises(ValueError, match="conditional: pass the conditioning input x"):
        _flow().log_prob(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match="unconditional"):
        MultiScaleFlow(3, 2, 1, hidden=8).log_prob(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8))
