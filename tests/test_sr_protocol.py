"""The SR evaluation protocol of §5.1 / §5.1.1: zero padding to a square, bits/dim over seeded random crops."""

from __future__ import annotations

import pytest
import torch

from cnf_teach.super_resolution.config import SRConfig
from cnf_teach.super_resolution.evaluation import (
    dataset_bits_per_dim,
    dataset_bits_totals,
    make_upsample_fn,
    pad_to_square,
    per_image_bits_per_dim,
    random_crop_bits_per_dim,
)
from cnf_teach.super_resolution.model import SuperResolutionBaseline


class _Pairs(torch.utils.data.Dataset):
    """Whole-image (lr, hr) uint8 pairs of the given HR sizes (LR by 2x2 subsampling: enough for alignment)."""

    def __init__(self, sizes: list[tuple[int, int]]) -> None:
        g = torch.Generator().manual_seed(0)
        self.hr = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes]
        self.names = [f"img{i}" for i in range(len(sizes))]

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hr[i][:, ::2, ::2].contiguous(), self.hr[i]


def test_pad_to_square_puts_zeros_right_and_bottom() -> None:
    x = torch.full((1, 3, 5, 7), 9, dtype=torch.uint8)
    padded, size = pad_to_square(x, 4)
    assert padded.shape == (1, 3, 8, 8) and size == (5, 7) and padded.dtype == torch.uint8
    assert (padded[..., :5, :7] == 9).all() and padded[..., 5:, :].sum() == 0 and padded[..., :, 7:].sum() == 0


def test_upsample_fn_pads_to_a_square_by_default_and_crops_back() -> None:
    model = SuperResolutionBaseline(SRConfig.tiny()).eval()
    seen = []
    predict = model.predict
    model.predict = lambda x, t=0.0: (seen.append(tuple(x.shape)), predict(x, t))[1]  # type: ignore[method-assign]
    lr = torch.randint(0, 256, (1, 3, 6, 10), dtype=torch.uint8)
    out = make_upsample_fn(model)(lr)
    assert out.shape == (1, 3, 12, 20) and seen[-1][2:] == (10, 10)
    make_upsample_fn(model, padding="replicate")(lr)
    assert seen[-1][2:] == (6, 10)  # the baseline needs no multiple: nothing to replicate
    with pytest.raises(ValueError, match="square"):
        make_upsample_fn(model, padding="reflect")


def test_random_crops_are_seeded_aligned_and_counted() -> None:
    model = SuperResolutionBaseline(SRConfig.tiny()).eval()
    data = _Pairs([(40, 48), (36, 36)])
    a = random_crop_bits_per_dim(model, data, crops=10, crop_size=16, seed=3, batch_size=4)
    b = random_crop_bits_per_dim(model, data, crops=10, crop_size=16, seed=3, batch_size=7)
    c = random_crop_bits_per_dim(model, data, crops=10, crop_size=16, seed=4)
    assert len(a) == 10 and a == pytest.approx(b, rel=1e-5) and a != pytest.approx(c)
    assert dataset_bits_per_dim(model, data, crops=10, crop_size=16, seed=3) == pytest.approx(sum(a) / 10, rel=1e-5)
    # Each crop is exactly the HR window of its LR window: score one crop directly.
    g = torch.Generator().manual_seed(3)
    lr, hr = data[int(torch.randint(2, (1,), generator=g))]
    top, left = (int(torch.randint(lr.shape[i] - 8 + 1, (1,), generator=g)) for i in (1, 2))
    direct = model.bits_per_dim(
        hr[None, :, 2 * top : 2 * top + 16, 2 * left : 2 * left + 16], lr[None, :, top : top + 8, left : left + 8]
    )
    assert a[0] == pytest.approx(direct.item(), rel=1e-5)
    with pytest.raises(ValueError, match="smaller than"):
        random_crop_bits_per_dim(model, data, crops=2, crop_size=64)


def test_whole_images_remain_an_option_and_small_sets_fall_back() -> None:
    model = SuperResolutionBaseline(SRConfig.tiny()).eval()
    data = _Pairs([(20, 24), (16, 16)])
    rows = per_image_bits_per_dim(model, data)
    whole = sum(b * d for b, d in rows) / sum(d for _, d in rows)
    assert dataset_bits_per_dim(model, data, protocol="whole") == pytest.approx(whole)
    assert dataset_bits_per_dim(model, data) == pytest.approx(whole)  # images under 128 px: scored whole
    with pytest.raises(ValueError, match="crops"):
        dataset_bits_per_dim(model, data, protocol="tiles")


@pytest.mark.parametrize("protocol", ["crops", "whole"])
def test_shares_of_the_set_add_up_to_the_set(protocol: str) -> None:
    """Split across 3 processes (crops 0, 3, 6, ... / 1, 4, ... / 2, 5, ...), the totals add up to one process's."""
    model = SuperResolutionBaseline(SRConfig.tiny()).eval()  # exact likelihood: no sampling noise
    data = _Pairs([(40, 48), (36, 36), (32, 40)])
    kw = {"protocol": protocol, "crops": 7, "crop_size": 16, "seed": 3}
    shares = [dataset_bits_totals(model, data, rank=r, world_size=3, **kw) for r in range(3)]
    bits, dims = (sum(x) for x in zip(*shares, strict=True))
    assert bits / dims == pytest.approx(dataset_bits_per_dim(model, data, **kw), rel=1e-6)
    if protocol == "crops":  # 7 crops of 3 * 16 * 16 dims: shares of 3, 2 and 2 crops
        assert [d for _, d in shares] == [3 * 768, 2 * 768, 2 * 768]
        each = random_crop_bits_per_dim(model, data, crops=7, crop_size=16, seed=3)
        assert shares[1][0] == pytest.approx(768 * (each[1] + each[4]), rel=1e-5)  # the same crops, wherever scored
    else:  # whole images, each counted with its size
        assert [d for _, d in shares] == [3 * 40 * 48, 3 * 36 * 36, 3 * 32 * 40]
