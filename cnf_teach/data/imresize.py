"""MATLAB-compatible bicubic resizing, written out in PyTorch.

Super-resolution papers make their low-resolution (LR) inputs with MATLAB's
``imresize(hr, 1/s)`` (bicubic, antialiasing on when downscaling) and report the
"Bicubic" baseline with ``imresize(lr, s)``. ``torch.nn.functional.interpolate``,
PIL and OpenCV all differ from it (other kernel coefficient, no antialiasing, other
pixel alignment), and the difference is large enough to shift PSNR by tenths of a dB,
so we write the algorithm out by hand. It is separable: each spatial axis is resized
in turn by a sparse linear map whose rows are kernel weights.

For output pixel $x \\in \\{1, \\dots, n_{out}\\}$ (1-based, as in MATLAB) along an axis
scaled by $s$, the matching input coordinate is

$$u = x / s + \\tfrac12 (1 - 1/s),$$

and the output is $\\sum_j w_j\\, I[j]$ over the input pixels $j$ with $|u - j| < 2/\\min(s, 1)$,
with weights $w_j \\propto k(u - j)$ normalised to sum to one. The cubic convolution
kernel (Keys 1981) with $a = -0.5$ is

$$k(t) = \\begin{cases} 1.5|t|^3 - 2.5|t|^2 + 1 & |t| \\le 1 \\\\
-0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 & 1 < |t| \\le 2 \\\\ 0 & \\text{otherwise.} \\end{cases}$$

When downscaling ($s < 1$) with antialiasing, the kernel is stretched to
$s\\,k(s t)$ so that it also low-pass filters. Pixels outside the image are
mirrored (symmetric padding). The axis with the smaller scale is resized first,
and uint8 images are clipped to [0, 255] and rounded after each axis, as MATLAB's
``imresizemex`` does (ties to even; the taps are accumulated in order, which matters
for the many sums that land on or next to a half).

References:
    R. Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP 1981.
    MATLAB ``imresize`` (Image Processing Toolbox), its ``contributions`` and ``cubic`` functions.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["cubic_kernel", "resize_weights", "imresize", "imresize_np"]


def cubic_kernel(t: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with $a = -0.5$ (MATLAB's ``cubic``), elementwise."""
    a = t.abs()
    a2 = a * a
    a3 = a2 * a
    inner = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    outer = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return inner + outer


def resize_weights(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """Weights and source indices of a 1-D MATLAB bicubic resize (MATLAB's ``contributions``).

    Args:
        in_length: Input length along the axis.
        out_length: Output length along the axis.
        scale: The scale factor $s$ used for the kernel and the coordinate map.
        antialiasing: Stretch the kernel when $s < 1$ (MATLAB's default).
        dtype: Floating type of the weights (computed in float64, then cast).

    Returns:
        ``(weights, indices)``, both ``[out_length, P]``: output pixel ``i`` is
        ``sum_p weights[i, p] * input[indices[i, p]]`` (0-based indices, mirrored at the borders).
    """
    kernel_width = 4.0
    stretch = scale < 1 and antialiasing
    if stretch:
        kernel_width = kernel_width / scale
    x = torch.arange(1, out_length + 1, dtype=torch.float64)  # [out], 1-based as in MATLAB
    u = x / scale + 0.5 * (1 - 1 / scale)  # [out] input coordinate of each output pixel
    left = torch.floor(u - kernel_width / 2)  # [out]
    taps = math.ceil(kernel_width) + 2
    ind = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]  # [out, P], 1-based
    dist = u[:, None] - ind  # [out, P]
    weights = scale * cubic_kernel(scale * dist) if stretch else cubic_kernel(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # Symmetric padding: 1..n, n..1, repeated; MATLAB's aux = [1:n, n:-1:1].
    aux = torch.cat([torch.arange(in_length), torch.arange(in_length - 1, -1, -1)])
    indices = aux[torch.remainder(ind.long() - 1, 2 * in_length)]
    # Drop taps that are zero for every output pixel (MATLAB's "kill"); only saves work.
    keep = (weights != 0).any(dim=0)
    return weights[:, keep].to(dtype), indices[:, keep]


def _resize_axis(x: Tensor, dim: int, out_length: int, scale: float, antialiasing: bool) -> Tensor:
    """Resize float tensor ``x`` along ``dim`` (-2 = rows, -1 = columns)."""
    in_length = x.shape[dim]
    weights, indices = resize_weights(in_length, out_length, scale, antialiasing, dtype=x.dtype)
    weights, indices = weights.to(x.device), indices.to(x.device)
    # Work on rows of a contiguous tensor: gathering whole rows is much faster than gathering columns.
    x = x.movedim(dim, -2).contiguous()  # [..., in, M]
    w = weights[:, :, None]  # [out, P, 1]
    # Accumulate the taps one after the other, in order: on uint8 data many sums land exactly
    # on or next to a half, and only this summation order reproduces MATLAB's rounding.
    # (Separate multiply and add, in place: a fused multiply-add would round differently.)
    out = x.index_select(-2, indices[:, 0]).mul_(w[:, 0])  # [..., out, M]
    buf = torch.empty_like(out)
    for p in range(1, indices.shape[1]):
        torch.index_select(x, -2, indices[:, p], out=buf)
        out.add_(buf.mul_(w[:, p]))
    return out.movedim(-2, dim)


def _round_uint8(x: Tensor) -> Tensor:
    """Clip to [0, 255] and round to the nearest integer, ties to even.

    Ties are common (at scale 2 the weights are dyadic, so sums of integers hit ``k + 0.5``
    exactly); ties to even is what reproduces the reference outputs pixel for pixel.
    """
    return x.clamp(0, 255).round()


def _output_size(
    size: tuple[int, int], scale: float | tuple[float, float] | None, output_size: tuple[int, int] | None
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Scale per axis and output size, following MATLAB's rules."""
    if (scale is None) == (output_size is None):
        raise ValueError("imresize needs exactly one of scale= or output_size=; pass e.g. scale=0.5")
    if output_size is not None:
        out_h, out_w = (int(v) for v in output_size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"output_size must be positive, got {tuple(output_size)}")
        return (out_h / size[0], out_w / size[1]), (out_h, out_w)
    sh, sw = (float(scale), float(scale)) if np.isscalar(scale) else (float(scale[0]), float(scale[1]))
    if sh <= 0 or sw <= 0 or not (math.isfinite(sh) and math.isfinite(sw)):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    return (sh, sw), (math.ceil(sh * size[0]), math.ceil(sw * size[1]))


def imresize(
    img: Tensor,
    scale: float | tuple[float, float] | None = None,
    output_size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> Tensor:
    """Resize images like MATLAB's ``imresize(img, scale)`` with the default bicubic method.

    Args:
        img: ``[B, C, H, W]``, ``[C, H, W]`` or ``[H, W]``; uint8, or float of any range
            (float is not clipped). Any device; uint8 is computed in float64 (float32 on MPS,
            which has no float64), float in its own precision (half precision in float32).
        scale: Scale factor $s$ (or ``(s_h, s_w)``); the output has ``ceil(s * size)`` pixels.
        output_size: ``(H_out, W_out)`` instead of ``scale``; then $s$ = out / in per axis.
        antialiasing: Stretch the kernel when downscaling (MATLAB's default, True).

    Returns:
        The resized image, same leading shape and dtype as ``img``. uint8 results are
        clipped to [0, 255] and rounded after each axis, as MATLAB does.
    """
    if not isinstance(img, Tensor):
        raise ValueError(f"imresize takes a torch.Tensor, got {type(img).__name__}; use imresize_np for numpy arrays")
    if img.dim() < 2:
        raise ValueError(f"imresize needs at least [H, W], got shape {tuple(img.shape)}")
    if img.dtype not in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise ValueError(f"imresize supports uint8 and float tensors, got {img.dtype}; convert with .float()")
    (sh, sw), (out_h, out_w) = _output_size((img.shape[-2], img.shape[-1]), scale, output_size)
    is_uint8 = img.dtype == torch.uint8
    if is_uint8:
        work = torch.float32 if img.device.type == "mps" else torch.float64
    else:
        work = torch.float32 if img.dtype in (torch.float16, torch.bfloat16) else img.dtype
    x = img.to(work)
    # MATLAB resizes the axis with the smaller scale first (rows first on a tie).
    axes = [(-2, out_h, sh), (-1, out_w, sw)]
    if sw < sh:
        axes.reverse()
    for dim, n, s in axes:
        if n == x.shape[dim] and s == 1:
            continue
        x = _resize_axis(x, dim, n, s, antialiasing)
        if is_uint8:
            x = _round_uint8(x)
    return x.to(img.dtype)


def imresize_np(
    img: np.ndarray,
    scale: float | tuple[float, float] | None = None,
    output_size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> np.ndarray:
    """:func:`imresize` for a numpy image laid out ``H x W`` or ``H x W x C`` (uint8 or float).

    Returns an array of the same layout and dtype (float32/float64 kept; uint8 rounded as MATLAB).
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"imresize_np takes an HxW or HxWxC array, got shape {arr.shape}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if arr.ndim == 3:
        t = t.permute(2, 0, 1)  # [C, H, W]
    out = imresize(t, scale=scale, output_size=output_size, antialiasing=antialiasing)
    if arr.ndim == 3:
        out = out.permute(1, 2, 0)
    return out.contiguous().numpy()
