"""Image metrics (PSNR/SSIM on Y and RGB) and the SR evaluation helper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from cnf_teach.data.images import SRImageDataset
from cnf_teach.data.natural import natural_sr_dataset
from cnf_teach.metrics import SR_METRICS, psnr, psnr_rgb, psnr_y, rgb_to_y, sr_metrics, ssim, ssim_rgb, ssim_y
from cnf_teach.super_resolution import bicubic_upsample, evaluate_sr


def _rng_img(seed: int, shape=(40, 48, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_rgb_to_y_is_bt601_like_matlab():
    white, black = np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)
    np.testing.assert_allclose(rgb_to_y(white), 235.0)  # 16 + 219
    np.testing.assert_allclose(rgb_to_y(black), 16.0)
    px = np.array([[[200, 100, 50]]], np.uint8)
    expected = 16 + (65.481 * 200 + 128.553 * 100 + 24.966 * 50) / 255
    assert rgb_to_y(px)[0, 0] == pytest.approx(expected, abs=1e-12)
    assert rgb_to_y(px).dtype == np.float64  # kept in floating point, not rounded
    img = _rng_img(0)
    np.testing.assert_array_equal(rgb_to_y(torch.from_numpy(img).permute(2, 0, 1)), rgb_to_y(img))
    gray = _rng_img(1, (10, 12))
    np.testing.assert_array_equal(rgb_to_y(gray), gray.astype(np.float64))  # one channel: itself


def test_psnr_formula_and_identity():
    a = np.zeros((16, 16))
    b = a.copy()
    b[0, :4] = 16.0  # MSE = 4 * 256 / 256 = 4
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 4.0))
    assert psnr(a, a) == math.inf


def test_ssim_is_wang_gaussian_window():
    a, b = _rng_img(2).astype(np.float64), _rng_img(3).astype(np.float64)
    ref = structural_similarity(
        a[..., 0], b[..., 0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(ref)
    assert ssim(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:8, :8, 0], b[:8, :8, 0])


def test_border_crop_and_layouts():
    hr = _rng_img(4)
    sr = np.clip(hr.astype(int) + np.random.default_rng(5).integers(-9, 10, hr.shape), 0, 255).astype(np.uint8)
    m = sr_metrics(sr, hr, border=3)
    assert set(m) == set(SR_METRICS)
    c = (slice(3, -3), slice(3, -3))
    assert m["psnr_y"] == pytest.approx(psnr(rgb_to_y(sr[c]), rgb_to_y(hr[c])))
    assert m["ssim_y"] == pytest.approx(ssim(rgb_to_y(sr[c]), rgb_to_y(hr[c])))
    assert m["psnr_rgb"] == pytest.approx(psnr(sr[c].astype(float), hr[c].astype(float)))
    assert m["ssim_rgb"] == pytest.approx(ssim(sr[c].astype(float), hr[c].astype(float)))
    assert m["psnr_y"] == pytest.approx(psnr_y(sr, hr, 3)) and m["ssim_y"] == pytest.approx(ssim_y(sr, hr, 3))
    assert m["psnr_rgb"] == pytest.approx(psnr_rgb(sr, hr, 3)) and m["ssim_rgb"] == pytest.approx(ssim_rgb(sr, hr, 3))
    t_sr, t_hr = torch.from_numpy(sr).permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1)
    assert sr_metrics(t_sr[None], t_hr, border=3) == m  # tensors are channel-first, a batch of one is fine
    assert sr_metrics(sr, hr, border=3, metrics=("psnr_y",)) == {"psnr_y": m["psnr_y"]}
    assert 20 < m["psnr_rgb"] < 40 and 0.5 < m["ssim_rgb"] < 1


def test_grayscale_hr_is_compared_on_its_one_channel():
    gray = _rng_img(6, (30, 30))
    sr3 = np.repeat(gray[:, :, None], 3, axis=2)
    m = sr_metrics(sr3, gray, border=0)
    assert m["psnr_y"] == math.inf and m["ssim_y"] == pytest.approx(1.0)


def test_metric_errors():
    a = _rng_img(7)
    with pytest.raises(ValueError, match="crop them to one size"):
        sr_metrics(a, a[:-2], border=0)
    with pytest.raises(ValueError, match="border 24 leaves nothing"):
        sr_metrics(a, a, border=24)
    with pytest.raises(ValueError, match="batch of 2"):
        sr_metrics(torch.zeros(2, 3, 20, 20), torch.zeros(3, 20, 20))
    with pytest.raises(ValueError, match="unknown metrics"):
        sr_metrics(a, a, metrics=("lpips",))


# --- evaluate_sr ----------------------------------------------------------------------------------


def test_evaluate_sr_bicubic_on_the_bundled_images():
    ds = natural_sr_dataset("test", scale=2)
    res = evaluate_sr(ds, scale=2, progress=False, per_image=True)
    assert res["images"] == 3 and set(res) == {*SR_METRICS, "images", "per_image"}
    # The means are the means of the per-image figures, each computed by sr_metrics with border 2;
    # camera and coins are grayscale, so their Y figures are on their one channel.
    for i, row in enumerate(res["per_image"]):
        lr, hr = ds[i]
        ref_hr = hr[:1] if ds.gray[i] else hr
        expected = sr_metrics(bicubic_upsample(lr[None], 2)[0], ref_hr, border=2)
        assert row == {"name": ds.names[i], **expected}
    for k in SR_METRICS:
        assert res[k] == pytest.approx(np.mean([r[k] for r in res["per_image"]]))
    assert 20 < res["psnr_y"] < 40 and 0.6 < res["ssim_y"] < 1
    assert res["psnr_y"] > evaluate_sr(ds, 2, upsample_fn=_nearest, progress=False)["psnr_y"]


def _nearest(lr: torch.Tensor) -> torch.Tensor:
    return lr.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def test_evaluate_sr_oracle_and_errors(tmp_path):
    img = _rng_img(8, (36, 40, 3))
    ds = SRImageDataset([img], scale=2)
    hr = ds[0][1]
    assert evaluate_sr(ds, 2, upsample_fn=lambda lr: hr[None], progress=False)["psnr_y"] == math.inf
    with pytest.raises(ValueError, match="uint8"):
        evaluate_sr(ds, 2, upsample_fn=lambda lr: hr[None].float() / 255, progress=False)
    with pytest.raises(ValueError, match="expected"):
        evaluate_sr(ds, 2, upsample_fn=lambda lr: lr, progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_sr(tmp_path / "missing", 2)
