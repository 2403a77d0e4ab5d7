"""MATLAB bicubic imresize: exact against MATLAB's outputs, and the Bicubic row of SR papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnf_teach.data.imresize import cubic_kernel, imresize, imresize_np, resize_weights
from cnf_teach.super_resolution import bicubic_upsample, evaluate_sr

SCALES = {"0.5": 0.5, "0.333333": 1 / 3, "0.25": 0.25, "2": 2.0, "3": 3.0, "4": 4.0, "0.7": 0.7}


def naive_resize_1d(signal: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """Textbook loop over output pixels, one axis, float64 (an independent reference)."""
    n = len(signal)
    width = 4.0 / scale if scale < 1 else 4.0
    out = np.zeros(out_len)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        js = np.arange(math.floor(u - width / 2), math.floor(u - width / 2) + math.ceil(width) + 2)
        t = u - js
        w = (
            scale * cubic_kernel(torch.from_numpy(scale * t)).numpy()
            if scale < 1
            else cubic_kernel(torch.from_numpy(t)).numpy()
        )
        w = w / w.sum()
        src = np.array([j - 1 if 1 <= j <= n else (-j if j < 1 else 2 * n - j) for j in js])  # mirror
        out[i - 1] = np.dot(w, signal[src])
    return out


# --- exactness ------------------------------------------------------------------------------------


def test_matches_matlab_test_vectors(shared_data):
    """uint8 outputs equal MATLAB's pixel for pixel; float outputs within 1e-6, every scale and size."""
    vec = np.load(shared_data / "imresize" / "matlab_bicubic_vectors.npz")
    checked = 0
    for kind in ("uint8", "float"):
        src = vec[f"{kind}_input"]
        for key, scale in SCALES.items():
            ref = vec[f"{kind}_scale_{key}"]
            out = imresize_np(src, scale=scale)
            assert out.shape == ref.shape and out.dtype == ref.dtype, key
            if kind == "uint8":
                np.testing.assert_array_equal(out, ref, err_msg=f"uint8 scale {key}")
            else:
                np.testing.assert_allclose(out, ref, rtol=0, atol=1e-6, err_msg=f"float scale {key}")
            checked += 1
    for h, w in ((20, 30), (50, 90)):
        out = imresize_np(vec["float_input"], output_size=(h, w))
        np.testing.assert_allclose(out, vec[f"float_size_{h}x{w}"], rtol=0, atol=1e-6)
        checked += 1
    assert checked == 16


def test_batched_tensor_matches_vectors(shared_data):
    """The batched [B, C, H, W] path gives the same uint8 images as one image at a time."""
    vec = np.load(shared_data / "imresize" / "matlab_bicubic_vectors.npz")
    img = torch.from_numpy(vec["uint8_input"]).permute(2, 0, 1)  # [3, 64, 64]
    batch = torch.stack([img, img.flip(-1)])  # [2, 3, 64, 64]
    for key in ("0.5", "2", "0.7"):
        out = imresize(batch, scale=SCALES[key])
        ref = torch.from_numpy(vec[f"uint8_scale_{key}"]).permute(2, 0, 1)
        assert torch.equal(out[0], ref)
        assert torch.equal(out[1], imresize(img.flip(-1), scale=SCALES[key]))


@pytest.mark.parametrize("scale", [0.5, 1 / 3, 0.8, 1.5, 2.0, 4.0])
def test_against_naive_loops(scale):
    x = torch.rand(2, 13, 17, dtype=torch.float64) * 255  # [C, H, W]
    out = imresize(x, scale=scale)
    oh, ow = math.ceil(scale * 13), math.ceil(scale * 17)
    assert out.shape == (2, oh, ow)
    for c in range(2):
        rows = np.stack([naive_resize_1d(x[c, :, j].numpy(), oh, scale) for j in range(17)], axis=1)  # [oh, 17]
        ref = np.stack([naive_resize_1d(rows[i], ow, scale) for i in range(oh)], axis=0)  # [oh, ow]
        np.testing.assert_allclose(out[c].numpy(), ref, atol=1e-9)


def test_weights_sum_to_one_and_indices_in_range():
    for n_in, n_out, s in ((10, 5, 0.5), (7, 21, 3.0), (64, 45, 0.7)):
        w, idx = resize_weights(n_in, n_out, s)
        assert w.shape == idx.shape and w.shape[0] == n_out
        torch.testing.assert_close(w.sum(1), torch.ones(n_out, dtype=torch.float64))
        assert idx.min() >= 0 and idx.max() < n_in


# --- behaviour ------------------------------------------------------------------------------------


def test_output_size_is_ceil_of_scale_times_size():
    x = torch.zeros(1, 1, 37, 53)
    assert imresize(x, scale=0.5).shape[-2:] == (19, 27)
    assert imresize(x, scale=(2.0, 0.5)).shape[-2:] == (74, 27)
    assert imresize(x, output_size=(20, 30)).shape[-2:] == (20, 30)


def test_constant_image_stays_constant_and_dtype_kept():
    for dtype in (torch.uint8, torch.float32, torch.float64):
        x = torch.full((1, 3, 15, 22), 77, dtype=dtype)
        for s in (0.5, 2.0, 0.3):
            y = imresize(x, scale=s)
            assert y.dtype == dtype
            torch.testing.assert_close(y.double(), torch.full_like(y, 77).double(), atol=1e-4, rtol=0)


def test_float32_close_to_float64_and_uint8_clipped():
    x = torch.rand(2, 3, 24, 31, dtype=torch.float64)
    torch.testing.assert_close(imresize(x.float(), scale=0.5).double(), imresize(x, scale=0.5), atol=1e-5, rtol=0)
    # Bicubic overshoots at hard edges; uint8 results are clipped, float results are not.
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 255
    up = imresize(step, scale=2.0)
    assert up.max() > 255 and up.min() < 0
    up8 = imresize(step.to(torch.uint8), scale=2.0)
    assert up8.max() == 255 and up8.min() == 0


def test_antialiasing_removes_aliasing_when_downscaling():
    """A one-pixel checkerboard averages to grey with antialiasing; without it, 1/3 picks single pixels."""
    board = ((torch.arange(33)[:, None] + torch.arange(33)[None, :]) % 2).double()  # [33, 33]
    smooth = imresize(board, scale=1 / 3)
    aliased = imresize(board, scale=1 / 3, antialiasing=False)
    assert (smooth[2:-2, 2:-2] - 0.5).abs().max() < 1e-3
    assert (aliased - 0.5).abs().min() > 0.49  # every output is a 0 or a 1 of the input


def test_numpy_layouts():
    img = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out = imresize_np(img, scale=0.5)
    assert out.shape == (10, 12, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(imresize_np(img[:, :, 0], scale=0.5), out[:, :, 0])


def test_bad_arguments():
    x = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match="exactly one of"):
        imresize(x)
    with pytest.raises(ValueError, match="exactly one of"):
        imresize(x, scale=2.0, output_size=(4, 4))
    with pytest.raises(ValueError, match="positive"):
        imresize(x, scale=-1.0)
    with pytest.raises(ValueError, match="imresize_np"):
        imresize(np.zeros((8, 8)), scale=2.0)
    with pytest.raises(ValueError, match="uint8 and float"):
        imresize(torch.zeros(8, 8, dtype=torch.int64), scale=2.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = torch.randint(0, 256, (2, 3, 40, 52), dtype=torch.uint8)
    for s in (0.5, 2.0):
        assert torch.equal(imresize(x.cuda(), scale=s).cpu(), imresize(x, scale=s))


# --- the Bicubic row of SR papers -----------------------------------------------------------------

# Published x2 bicubic figures (PSNR dB / SSIM on Y, border 2), e.g. Kim et al. 2016 (VDSR),
# Lim et al. 2017 (EDSR), Zhang et al. 2018 (RCAN), and Table 2 of Winkler et al. 2019 (rounded).
PUBLISHED = {"Set5": (33.66, 0.9299), "Set14": (30.24, 0.8688)}


@pytest.mark.parametrize("name", ["Set5", "Set14"])
def test_bicubic_row_of_sr_papers(shared_data, name):
    res = evaluate_sr(
        shared_data / "sr" / name, scale=2, upsample_fn=lambda lr: bicubic_upsample(lr, 2), progress=False
    )
    psnr, ssim = PUBLISHED[name]
    assert res["images"] == {"Set5": 5, "Set14": 14}[name]
    assert abs(res["psnr_y"] - psnr) <= 0.03, res
    assert abs(res["ssim_y"] - ssim) <= 0.001, res
