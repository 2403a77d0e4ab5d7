"""VGG-like conditioner (Table 4) and Table 7's coupling net."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnf_teach.flows.multiscale import MultiScaleFlow
from cnf_teach.nets.vgg import InstanceNormCouplingNet, VGGFeatures


def test_feature_shapes_follow_the_levels():
    g = VGGFeatures(3, widths=(4, 6, 8))
    full, (h0, h1) = g.all_features(torch.rand(2, 3, 32, 24))
    assert full.shape == (2, 4, 32, 24)
    assert h0.shape == (2, 6, 16, 12)  # level 0 works at H/2
    assert h1.shape == (2, 8, 8, 6)  # level 1 at H/4
    assert g.cond_channels == [6, 8] and g.full_channels == 4
    assert [t.shape for t in g(torch.rand(2, 3, 32, 24))] == [h0.shape, h1.shape]


def test_layers_are_table_4():
    """Table 4: block (1024), max-pool, block, block (512), max-pool, block, block (256); outputs at layers 4 and 7."""
    g = VGGFeatures(3, widths=(4, 6, 8))
    block = [nn.InstanceNorm2d, nn.ReLU, nn.Conv2d]
    kinds = {i: getattr(g, f"layer{i}") for i in range(1, 8)}
    for i in (1, 3, 4, 6, 7):
        assert [type(m) for m in kinds[i]] == block, f"layer {i}"
    for i in (2, 5):
        assert isinstance(kinds[i], nn.MaxPool2d) and kinds[i].kernel_size == 2, f"layer {i}"
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(m.kernel_size == (3, 3) for m in convs)
    assert [m.out_channels for m in convs] == [4, 6, 6, 8, 8]
    assert g.OUTPUT_LAYERS == (4, 7)
    # The outputs are exactly layers 1, 4 and 7 run in Table 4's order.
    x = torch.rand(1, 3, 16, 16)
    out = {0: x}
    for i in range(1, 8):
        out[i] = kinds[i](out[i - 1])
    full, (h0, h1) = g.all_features(x)
    assert torch.equal(full, out[1]) and torch.equal(h0, out[4]) and torch.equal(h1, out[7])
    assert [type(m) for m in VGGFeatures(3, (4, 6, 8), convs_per_block=2).layer3] == block * 2


def test_is_a_multiscale_conditioner():
    g = VGGFeatures(3, widths=(4, 6, 8))
    flow = MultiScaleFlow(1, levels=2, steps=1, conditioner=g, cond_channels=g.cond_channels, hidden=8)
    y, x = torch.randn(2, 1, 16, 16), torch.rand(2, 3, 16, 16)
    assert flow.log_prob(y, x).shape == (2,)
    assert flow.sample(x).shape == (2, 1, 16, 16)


def test_features_ignore_exposure_and_colour_balance():
    """Layer 1's instance norm normalises each photograph per channel: g(a x + b) = g(x) for a > 0."""
    g = VGGFeatures(3, widths=(4, 6, 8))
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


def test_full_to_half_keeps_where_in_each_block_a_response_lies():
    """With ``full_to_half`` h_0 is layer 4's output and layer 1's features moved to H/2 by space-to-depth:
    each of a 2x2 block's four pixels becomes its own channel, so which pixel responded is kept (the max-pool
    alone forgets it)."""
    torch.manual_seed(0)
    g = VGGFeatures(3, widths=(4, 6, 8), full_to_half=True)
    x = torch.rand(2, 3, 16, 12)
    full, (h0, h1) = g.all_features(x)
    assert g.cond_channels == [6 + 16, 8] and h0.shape == (2, 22, 8, 6) and h1.shape == (2, 8, 4, 3)
    # The first channels are Table 4's h_0 (same weights, same computation).
    plain = VGGFeatures(3, widths=(4, 6, 8))
    plain.load_state_dict(g.state_dict())
    _, (p0, p1) = plain.all_features(x)
    assert torch.equal(h0[:, :6], p0) and torch.equal(h1, p1)
    # The rest is an independent space-to-depth of layer 1's output: pixel (2i + a, 2j + b) of channel c
    # sits at (i, j) of one channel each, all 4 x 4 values present exactly once.
    extra = h0[:, 6:]  # [B, 16, H/2, W/2]
    for c in range(4):
        for a in range(2):
            for b in range(2):
                block = full[:, c, a::2, b::2]  # [B, H/2, W/2]
                hits = [k for k in range(16) if torch.equal(extra[:, k], block)]
                assert len(hits) == 1, (c, a, b)
