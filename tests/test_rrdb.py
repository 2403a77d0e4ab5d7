"""The RRDB network of ESRGAN and its conditioner for multi-scale flows."""

from __future__ import annotations

import pytest
import torch
from conftest import perturb_

from cnf_teach.nets.rrdb import RRDB, ResidualDenseBlock, RRDBConditioner, RRDBNet


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_dense_block_parameter_count_matches_the_formula() -> None:
    # Five 3x3 convs; the i-th sees F + i*G channels, outputs G (F for the last): weights + biases.
    f, g = 16, 8
    expected = sum(9 * (f + i * g) * (g if i < 4 else f) + (g if i < 4 else f) for i in range(5))
    assert _count(ResidualDenseBlock(f, g)) == expected
    assert _count(RRDB(f, g)) == 3 * expected


def test_paper_sizes() -> None:
    # 16 blocks, 128 features; growth 32 (CNF) and 55 (baseline), counted without allocating memory.
    with torch.device("meta"):
        cnf, base = RRDBNet(3, 128, 16, 32), RRDBNet(3, 128, 16, 55)
    assert len(cnf.body) == 16
    assert _count(cnf) == 24_051_328
    assert _count(base) == 39_416_800


def test_conditioner_gives_one_map_per_level_at_its_resolution() -> None:
    g = RRDBConditioner(3, features=8, blocks=1, growth=4, levels=3, upscale=2)
    hs = g(torch.randn(2, 3, 16, 12))
    assert [tuple(h.shape) for h in hs] == [(2, 8, 16, 12), (2, 8, 8, 6), (2, 8, 4, 3)]
    g4 = RRDBConditioner(3, features=8, blocks=1, growth=4, levels=2, upscale=4, full_resolution=True)
    shapes = [tuple(h.shape) for h in g4(torch.randn(1, 3, 8, 8))]
    assert shapes == [(1, 8, 16, 16), (1, 8, 8, 8), (1, 8, 32, 32)]


def test_receptive_field_grows_with_the_blocks() -> None:
    # conv_first and body_conv alone see 5x5; each RRDB adds 3 dense blocks x 5 convs = 15 pixels of radius.
    for blocks, radius in ((0, 2), (1, 17)):
        net = perturb_(RRDBNet(3, 8, blocks, 4))
        x = torch.randn(1, 3, 40, 40, requires_grad=True)
        net(x)[0, :, 20, 20].sum().backward()
        rows, cols = torch.nonzero(x.grad.abs().sum(dim=(0, 1)), as_tuple=True)
        assert (rows.min().item(), rows.max().item()) == (20 - radius, 20 + radius)
        assert (cols.min().item(), cols.max().item()) == (20 - radius, 20 + radius)


def test_wrong_channels_named() -> None:
    with pytest.raises(ValueError, match=r"expects images \[B, 3, H, W\].*grayscale"):
        RRDBNet(3, 8, 1, 4)(torch.randn(1, 1, 8, 8))
