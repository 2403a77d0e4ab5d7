"""VGG-like conditioner (Table 4) and Table 7's coupling net."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnf_teach.flows.multiscale import MultiScaleFlow
from cnf_teach.nets.vgg import InstanceNormCouplingNet, VGGFeatures


def test_feature_shapes_follow_the_levels():
    g = VGGFeatures(3, widths=(4, 6, 8), convs_per_block=2)
    full, (h0, h1) = g.all_features(torch.rand(2, 3, 32, 24))
    assert full.shape == (2, 4, 32, 24)
    assert h0.shape == (2, 6, 16, 12)  # level 0 works at H/2
    assert h1.shape == (2, 8, 8, 6)  # level 1 at H/4
    assert g.cond_channels == [6, 8] and g.full_channels == 4
    assert [t.shape for t in g(torch.rand(2, 3, 32, 24))] == [h0.shape, h1.shape]


def test_blocks_are_instancenorm_relu_conv_and_pools():
    g = VGGFeatures(3, widths=(4, 6, 8), convs_per_block=2)
    kinds = [type(m) for m in g.block1]
    assert kinds == [nn.InstanceNorm2d, nn.ReLU, nn.Conv2d] * 2
    assert all(m.kernel_size == (3, 3) for m in g.modules() if isinstance(m, nn.Conv2d))
    assert isinstance(g.pool, nn.MaxPool2d) and g.pool.kernel_size == 2


def test_is_a_multiscale_conditioner():
    g = VGGFeatures(3, widths=(4, 6, 8), convs_per_block=1)
    flow = MultiScaleFlow(1, levels=2, steps=1, conditioner=g, cond_channels=g.cond_channels, hidden=8)
    y, x = torch.randn(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    assert flow.log_prob(y, x).shape == (2,)
    assert flow.sample(x).shape == (2, 1, 16, 16)


def test_features_ignore_exposure_and_colour_balance():
    """The stem normalises each photograph per channel: g(a x + b) = g(x) for a > 0."""
    g = VGGFeatures(3, widths=(4, 6, 8), convs_per_block=1)
    x = torch.rand(1, 3, 16, 16)
    a = torch.tensor([1.7, 0.6, 1.2]).view(1, 3, 1, 1)
    b = torch.tensor([0.1, -0.2, 0.05]).view(1, 3, 1, 1)
    for u, v in zip(g(x), g(a * x + b), strict=True):
        assert torch.allclose(u, v, atol=1e-3)


def test_bad_inputs_are_reported():
    g = VGGFeatures(3, widths=(4, 6, 8))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        g(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.rand(2, 3, 18, 16))
    with pytest.raises(ValueError, match="three entries"):
        VGGFeatures(3, widths=(4, 6))


def test_table7_net_starts_at_zero_and_has_its_layers():
    net = InstanceNormCouplingNet(5, 3, hidden=32)
    assert [type(m) for m in net] == [nn.Conv2d, nn.InstanceNorm2d, nn.ReLU, nn.Conv2d]
    assert net[0].out_channels == 32 and net[0].kernel_size == (3, 3) and net[-1].kernel_size == (3, 3)
    assert torch.equal(net(torch.randn(2, 5, 8, 8)), torch.zeros(2, 3, 8, 8))
