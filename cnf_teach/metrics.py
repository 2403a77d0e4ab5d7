"""Metrics: likelihoods in bits per dimension.

Papers on likelihood models report $-\\log_2 p / D$, "bits per dimension" (bpd):
the negative log-likelihood in nats divided by $D \\ln 2$, where $D$ is the number of
dimensions (pixels x channels). Discrete data adds bookkeeping for the bin width,
handled with dequantization.

Image quality for super-resolution: PSNR and SSIM (scikit-image) on the luminance Y
(ITU-R BT.601) with a border crop, and on RGB, as SR papers report them.

Segmentation (vessels): precision and recall of a binary map, the precision-recall
curve of a soft map over all thresholds, and its maximum F-score, all inside a
field-of-view mask.

Length: about 330 lines; every metric the course reports (bits/dim, PSNR/SSIM on Y, PR curve and
max F) in one place, so the chapters import one module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torch import Tensor

__all__ = [
    "dequantized_bits_per_dim",
    "nats_to_bits_per_dim",
    "rgb_to_y",
    "psnr",
    "ssim",
    "psnr_y",
    "ssim_y",
    "psnr_rgb",
    "ssim_rgb",
    "sr_metrics",
    "precision_recall",
    "pr_curve",
    "max_f_score",
]


def nats_to_bits_per_dim(log_prob: Tensor, num_dims: int) -> Tensor:
    """$-\\log p / (D \\ln 2)$: a log-likelihood in nats to bits per dimension.

    What the figure means is what ``log_prob`` is: for an exact log-probability of
    discrete data (the factorized baselines of :mod:`cnf_teach.baselines`) it is the
    exact bits/dim; for a dequantization lower bound on $\\log P(y)$ (from
    :func:`cnf_teach.dequantization.dequantized_log_likelihood`, whose $\\log q$ already
    holds the bin width) it is an upper bound on the discrete data's bits/dim; for a
    continuous density it is the density's bits/dim, with no bin width (see
    :func:`dequantized_bits_per_dim` for that correction).

    Args:
        log_prob: $\\log p$ in nats, any shape (typically ``[B]``).
        num_dims: $D$, the dimensions of one sample.

    Returns:
        Bits per dimension, same shape as ``log_prob``. No bin-width correction is
        applied: the input is taken as the log-probability (or density) to report.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return -log_prob / (num_dims * math.log(2.0))


def dequantized_bits_per_dim(
    log_density: Tensor, num_dims: int, num_bins: int = 256, data_range: float = 1.0
) -> Tensor:
    """Bits per dimension of *discrete* data from a density at uniformly dequantized points.

    A flow trained on $v = (y + u)\\,\\Delta$, $u \\sim \\mathcal{U}[0, 1)^D$, with bin width
    $\\Delta = $ ``data_range / num_bins`` (1/256 for 8-bit data scaled to $[0, 1)$), gives a
    density $\\log p(v)$ in nats. $\\log p(v) + D \\log\\Delta$ is a one-sample estimate of a lower
    bound on $\\log P(y)$ (eq. (4) of Winkler et al. 2019), so this returns

    $$\\frac{-\\log p(v)}{D \\ln 2} - \\log_2 \\Delta \\;\\ge\\; -\\frac{\\log_2 P(y)}{D},$$

    an *upper bound* on the discrete data's bits per dimension (a bound in expectation over
    $u$; a single draw can fall on either side). For 8-bit data in $[0, 1)$ that is $+8$ bits; for data
    kept in $[0, 256)$ (``data_range=256``) the correction is 0. Use
    :func:`nats_to_bits_per_dim` instead for figures that are log-probabilities of the
    discrete data already (exact baselines, or the bound of
    :func:`cnf_teach.dequantization.dequantized_log_likelihood`, whose $\\log q$ holds the
    bin width).

    Args:
        log_density: $\\log p(v)$ in nats, any shape (typically ``[B]``).
        num_dims: $D$, the dimensions of one sample.
        num_bins: $K$, the number of discrete levels.
        data_range: Width of the interval the $K$ bins tile (1.0 for $[0, 1)$).

    Returns:
        Bits per dimension, same shape as ``log_density``.
    """
    if num_bins < 2 or data_range <= 0:
        raise ValueError(f"need num_bins >= 2 and data_range > 0, got num_bins={num_bins}, data_range={data_range}")
    bin_width = data_range / num_bins
    return nats_to_bits_per_dim(log_density, num_dims) - math.log2(bin_width)


# --- Image quality: PSNR and SSIM as super-resolution papers report them --------------------------
#
# The protocol of the SR literature (the "Bicubic" rows of Dong et al. 2014, Kim et al. 2016,
# Lim et al. 2017, and Table 2 of Winkler et al. 2019): compare the uint8 SR output with the uint8
# HR image on the luminance Y of ITU-R BT.601 (MATLAB's ``rgb2ycbcr``), kept in floating point,
# after cropping a border of ``scale`` pixels; SSIM with an 11x11 Gaussian window of sigma 1.5
# (Wang et al. 2004). A single-channel image is evaluated on its one channel.


SR_METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb")


def _as_hwc(img: Tensor | np.ndarray, name: str) -> np.ndarray:
    """An image as a float64 ``H x W x C`` array: tensors are channel-first, arrays channel-last."""
    if isinstance(img, Tensor):
        t = img.detach().cpu()
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"{name}: expected one image, got a batch of {t.shape[0]}; pass images one by one")
            t = t[0]
        if t.dim() == 3:
            t = t.permute(1, 2, 0)  # [C, H, W] -> [H, W, C]
        elif t.dim() != 2:
            raise ValueError(f"{name}: expected [C, H, W] or [H, W], got shape {tuple(img.shape)}")
        arr = t.numpy()
    else:
        arr = np.asarray(img)
        if arr.ndim not in (2, 3):
            raise ValueError(f"{name}: expected an H x W or H x W x C array, got shape {arr.shape}")
    arr = arr.astype(np.float64)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if 2 * border >= min(img.shape[0], img.shape[1]):
        raise ValueError(f"border {border} leaves nothing of a {img.shape[0]}x{img.shape[1]} image; use a smaller one")
    return img[border : img.shape[0] - border, border : img.shape[1] - border] if border else img


def _pair(sr: Tensor | np.ndarray, hr: Tensor | np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_hwc(sr, "sr"), _as_hwc(hr, "hr")
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"sr is {a.shape[0]}x{a.shape[1]} but hr is {b.shape[0]}x{b.shape[1]}; crop them to one size")
    if a.shape[2] != b.shape[2] and b.shape[2] == 1:
        # A grayscale HR image fed to a model as 3 equal channels: compare the output's channel mean.
        a = np.round(a.mean(axis=2, keepdims=True))
    if a.shape[2] != b.shape[2]:
        raise ValueError(f"sr has {a.shape[2]} channels but hr has {b.shape[2]}; pass both as RGB or both as gray")
    return _crop(a, border), _crop(b, border)


def rgb_to_y(img: Tensor | np.ndarray) -> np.ndarray:
    """Luminance Y of ITU-R BT.601 as MATLAB's ``rgb2ycbcr``, in [16, 235], not rounded.

    $Y = 16 + 65.481 R + 128.553 G + 24.966 B$ for $R, G, B$ in $[0, 1]$, i.e. for
    uint8-valued input $Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255$ with $R, G, B$ in $[0, 255]$.

    Args:
        img: A uint8-valued image, ``[3, H, W]`` / ``[1, 3, H, W]`` tensor or ``H x W x 3`` array.
            A single-channel image is returned as it is (its one channel is its luminance).

    Returns:
        ``H x W`` float64 array.
    """
    x = _as_hwc(img, "img")
    if x.shape[2] == 1:
        return x[:, :, 0]
    if x.shape[2] != 3:
        raise ValueError(f"rgb_to_y needs 1 or 3 channels, got {x.shape[2]}")
    return 16.0 + (65.481 * x[:, :, 0] + 128.553 * x[:, :, 1] + 24.966 * x[:, :, 2]) / 255.0


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio $10 \\log_{10}(R^2 / \\mathrm{MSE})$ (scikit-image); inf when equal."""
    if np.array_equal(a, b):
        return math.inf
    return float(peak_signal_noise_ratio(np.asarray(b, np.float64), np.asarray(a, np.float64), data_range=data_range))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """SSIM of Wang et al. 2004 (scikit-image): Gaussian window, sigma 1.5, population covariances.

    ``a`` and ``b`` are ``H x W`` or ``H x W x C`` (then averaged over channels), at least 11x11.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if min(a.shape[0], a.shape[1]) < 11:
        raise ValueError(f"SSIM's 11x11 window needs images of at least 11x11, got {a.shape[0]}x{a.shape[1]}")
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=data_range,
            channel_axis=2 if a.ndim == 3 else None,
        )
    )


def psnr_y(sr: Tensor | np.ndarray, hr: Tensor | np.ndarray, border: int = 0) -> float:
    """PSNR on the Y channel (float, BT.601) after cropping ``border`` pixels on each side."""
    a, b = _pair(sr, hr, border)
    return psnr(rgb_to_y(a), rgb_to_y(b))


def ssim_y(sr: Tensor | np.ndarray, hr: Tensor | np.ndarray, border: int = 0) -> float:
    """SSIM on the Y channel (float, BT.601) after cropping ``border`` pixels on each side."""
    a, b = _pair(sr, hr, border)
    return ssim(rgb_to_y(a), rgb_to_y(b))


def psnr_rgb(sr: Tensor | np.ndarray, hr: Tensor | np.ndarray, border: int = 0) -> float:
    """PSNR over all channels (RGB, or the one channel of a gray image) after the border crop."""
    a, b = _pair(sr, hr, border)
    return psnr(a, b)


def ssim_rgb(sr: Tensor | np.ndarray, hr: Tensor | np.ndarray, border: int = 0) -> float:
    """SSIM averaged over the channels after the border crop."""
    a, b = _pair(sr, hr, border)
    return ssim(a, b)


def sr_metrics(
    sr_uint8: Tensor | np.ndarray,
    hr_uint8: Tensor | np.ndarray,
    border: int = 0,
    metrics: Sequence[str] = SR_METRICS,
) -> dict[str, float]:
    """PSNR and SSIM on Y and on RGB for one (SR, HR) pair, as SR papers report them.

    Args:
        sr_uint8: The super-resolved image, uint8 valued: ``[3, H, W]`` / ``[1, 3, H, W]`` tensor
            or ``H x W x 3`` array.
        hr_uint8: The ground truth, same layout and size; may have one channel (grayscale), in
            which case ``sr_uint8``'s channels are averaged (and rounded) into one.
        border: Pixels cropped on every side before comparing (the scale factor, by convention).
        metrics: Which of :data:`SR_METRICS` to compute (SSIM on RGB is the slow one).

    Returns:
        ``{"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb"}`` (or the subset asked for), in dB and in [0, 1].
    """
    unknown = set(metrics) - set(SR_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {', '.join(SR_METRICS)}")
    a, b = _pair(sr_uint8, hr_uint8, border)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    fns = {
        "psnr_y": lambda: psnr(ya, yb),
        "ssim_y": lambda: ssim(ya, yb),
        "psnr_rgb": lambda: psnr(a, b),
        "ssim_rgb": lambda: ssim(a, b),
    }
    return {k: fns[k]() for k in SR_METRICS if k in metrics}


# --- segmentation: precision, recall, F-score ---------------------------------------------------
def _flat_in_mask(a, mask) -> np.ndarray:
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64).ravel()
    if mask is None:
        return a
    m = np.asarray(mask.detach().cpu() if isinstance(mask, Tensor) else mask).ravel() > 0
    if m.shape != a.shape:
        raise ValueError(f"mask has {m.size} entries but the map has {a.size}; give them the same shape")
    return a[m]


def precision_recall(pred, labels, mask=None) -> tuple[float, float]:
    """Precision and recall of a binary map against binary labels, inside ``mask``.

    Args:
        pred: Binary prediction (array or tensor, any shape; nonzero = vessel).
        labels: Binary ground truth, same shape.
        mask: Optional field-of-view mask, same shape (nonzero = counted).

    Returns:
        ``(precision, recall)``; precision is 1 when nothing is predicted, recall 1 when
        there is nothing to find.
    """
    p = _flat_in_mask(pred, mask) > 0.5
    t = _flat_in_mask(labels, mask) > 0.5
    tp = float(np.sum(p & t))
    return (tp / p.sum() if p.sum() else 1.0), (tp / t.sum() if t.sum() else 1.0)


def pr_curve(scores, labels, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The precision-recall curve of a soft map over every threshold, inside ``mask``.

    A pixel is predicted positive when its score is ``>= threshold``; the thresholds are
    the distinct scores, from the highest down (so recall increases along the curve).

    Args:
        scores: Soft map (e.g. the mean of $N$ samples), any shape.
        labels: Binary ground truth, same shape.
        mask: Optional field-of-view mask, same shape.

    Returns:
        ``(precision, recall, thresholds)``, 1D arrays of equal length.
    """
    s = _flat_in_mask(scores, mask)
    t = _flat_in_mask(labels, mask) > 0.5
    if s.size == 0:
        raise ValueError("no pixel to score: the mask is empty")
    if not t.any():
        raise ValueError("the labels hold no positive pixel inside the mask; precision and recall are undefined")
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each distinct score
    tp = np.cumsum(t)[last]
    predicted = last + 1
    return tp / predicted, tp / t.sum(), s[last]


def max_f_score(scores, labels, mask=None) -> tuple[float, float]:
    """The maximum over thresholds of $F = 2PR / (P + R)$, and the threshold that reaches it.

    Args:
        scores: Soft map, any shape.
        labels: Binary ground truth, same shape.
        mask: Optional field-of-view mask.

    Returns:
        ``(f, threshold)``.
    """
    precision, recall, thresholds = pr_curve(scores, labels, mask)
    denom = precision + recall
    f = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    i = int(np.argmax(f))
    return float(f[i]), float(thresholds[i])
