"""Evaluate a super-resolution method on an image set: PSNR and SSIM as SR papers report them.

The protocol (Dong et al. 2014; Lim et al. 2017; Table 2 of Winkler et al. 2019): HR cropped
to a multiple of the scale, LR by MATLAB bicubic (uint8), the method's uint8 output compared
with HR on the luminance Y (ITU-R BT.601, kept in floating point) and on RGB, after cropping
a border of ``scale`` pixels; SSIM with a Gaussian window of sigma 1.5. Grayscale images are
compared on their one channel. The figures are means over the set's images.

The "Bicubic" row of the papers is :func:`bicubic_upsample`: on Set5 / Set14 at scale 2 it
gives 33.67 dB / 0.9303 and 30.23 dB / 0.8691 (published: 33.66 / 0.9299 and 30.24 / 0.8688).

Which Y? Keeping Y in floating point (as here) lands within 0.014 dB and 0.0004 of the
published figures on both sets. Rounding Y to uint8 first (MATLAB's ``rgb2ycbcr`` on uint8
images) moves both sets about 0.02 dB and 0.0006 lower (33.64 / 0.9292, 30.22 / 0.8683).
The older protocol of Dong et al. 2014, which resizes the rounded Y channel alone (in floating
point) instead of the RGB image, gives 33.66 / 0.9299 and 30.23 / 0.8687; we keep the RGB
protocol because the models see RGB images.

Test-time padding and bits/dim follow §5.1 and §5.1.1 of Winkler et al. 2019 by default: the
LR image is padded with zeros at the right and bottom to a square (whose side the flow's
squeezes divide) and the output cropped to the exact image shape before PSNR/SSIM
(:func:`make_upsample_fn`, ``padding="square"``); bits/dim are the mean over 1000 random
128 x 128 HR crops drawn with a fixed seed (:func:`dataset_bits_per_dim`, ``protocol="crops"``).
The project's earlier variants stay available as named options: edge replication to the next
multiple (``padding="replicate"``) and whole images (``protocol="whole"``).

Length: a little over 300 lines, because the paper's protocol (square zero padding, random-crop
bits/dim) sits beside the older variants it replaces, as named options.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ..data.images import SRImageFolder, crop_to, pad_to_multiple
from ..data.imresize import imresize
from ..metrics import SR_METRICS, sr_metrics
from ..progress import track
from .model import SRModel, SuperResolutionCNF

logger = logging.getLogger(__name__)

__all__ = [
    "bicubic_upsample",
    "dataset_bits_per_dim",
    "dataset_bits_totals",
    "evaluate_sr",
    "make_upsample_fn",
    "pad_to_square",
    "per_image_bits_per_dim",
    "random_crop_bits_per_dim",
]

Padding = Literal["square", "replicate"]


def bicubic_upsample(lr: Tensor, scale: int = 2) -> Tensor:
    """MATLAB bicubic upscaling by ``scale``: uint8 ``[B, C, h, w]`` -> uint8 ``[B, C, s*h, s*w]``."""
    return imresize(lr, scale=float(scale))


def evaluate_sr(
    data: torch.utils.data.Dataset | str | Path,
    scale: int = 2,
    upsample_fn: Callable[[Tensor], Tensor] | None = None,
    border: int | None = None,
    progress: bool = True,
    per_image: bool = False,
    metrics: Sequence[str] = SR_METRICS,
) -> dict:
    """Mean PSNR/SSIM (Y and RGB) of a method over a set of whole images.

    Args:
        data: A dataset of whole-image ``(lr, hr)`` uint8 pairs (``[3, h, w]``, ``[3, s*h, s*w]``,
            e.g. :class:`~cnf_teach.data.images.SRImageFolder` without ``patch_size``), or a folder
            of images (then made into one at this scale). A ``gray`` attribute (one bool per image)
            marks grayscale images, which are compared on their one channel.
        scale: SR factor $s$.
        upsample_fn: ``fn(lr)`` with ``lr`` uint8 ``[1, 3, h, w]`` returning uint8 ``[1, 3, s*h, s*w]``
            (on any device); ``None`` is MATLAB bicubic (:func:`bicubic_upsample`).
        border: Pixels cropped on each side before comparing; ``None`` means ``scale``.
        progress: Report progress (:mod:`cnf_teach.progress`).
        per_image: Also return ``"per_image"``: a list of ``{"name", "psnr_y", ...}``.
        metrics: Which of ``psnr_y, ssim_y, psnr_rgb, ssim_rgb`` to compute (default: all).

    Returns:
        ``{"psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "images"}``: means over the set, and
        the number of images (only the metrics asked for; plus ``"per_image"`` when asked).

    Raises:
        ValueError: bad folder or image (see :class:`~cnf_teach.data.images.SRImageFolder`), or an
            output of the wrong dtype or size.
    """
    if isinstance(data, (str, Path)):
        data = SRImageFolder(data, scale=scale)
    if upsample_fn is None:

        def upsample_fn(lr: Tensor) -> Tensor:
            return bicubic_upsample(lr, scale)

    border = scale if border is None else border
    if len(data) == 0:
        raise ValueError("evaluate_sr got an empty dataset; pass a folder or dataset with at least one image")
    gray = list(getattr(data, "gray", [False] * len(data)))
    names = list(getattr(data, "names", [f"image_{i}" for i in range(len(data))]))
    rows = []
    for i in track(range(len(data)), desc="evaluate", unit="image", enabled=progress, leave=False):
        lr, hr = data[i]  # [3, h, w], [3, H, W] uint8
        with torch.no_grad():
            sr = upsample_fn(lr.unsqueeze(0))
        if not isinstance(sr, Tensor) or sr.dtype != torch.uint8:
            raise ValueError(
                f"upsample_fn must return a uint8 tensor, got {getattr(sr, 'dtype', type(sr).__name__)}; "
                "convert with .round().clamp(0, 255).to(torch.uint8)"
            )
        sr = sr.detach().cpu()
        if tuple(sr.shape) != (1, *hr.shape):
            raise ValueError(f"{names[i]}: upsample_fn returned {tuple(sr.shape)}, expected {(1, *hr.shape)}")
        ref = hr[:1] if gray[i] else hr  # a grayscale image is compared on its one channel
        row = sr_metrics(sr[0], ref, border=border, metrics=metrics)
        rows.append({"name": names[i], **row})
    out: dict = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "name"}
    out["images"] = len(rows)
    if per_image:
        out["per_image"] = rows
    return out


def _lr_multiple(model: SRModel) -> int:
    """LR sides must be multiples of this so that HR sides are multiples of $2^L$."""
    cfg = model.config
    need = 2**cfg.levels if isinstance(model, SuperResolutionCNF) else 1
    return max(1, need // cfg.scale)


def pad_to_square(x: Tensor, multiple: int = 1) -> tuple[Tensor, tuple[int, int]]:
    """Pad ``[..., H, W]`` with zeros at the right and bottom to a square whose side is a multiple of ``multiple``.

    The test-time padding of §5.1 of Winkler et al. 2019. Works on any dtype (uint8 included).

    Returns:
        ``(padded, (H, W))``: the padded tensor and the original size (for :func:`~cnf_teach.data.images.crop_to`).
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2], x.shape[-1]
    side = -(-max(h, w) // multiple) * multiple
    out = x.new_zeros((*x.shape[:-2], side, side))
    out[..., :h, :w] = x
    return out, (h, w)


def _pad(x: Tensor, multiple: int, padding: Padding) -> tuple[Tensor, tuple[int, int]]:
    if padding == "square":
        return pad_to_square(x, multiple)
    if padding == "replicate":
        return pad_to_multiple(x, multiple, mode="replicate")
    raise ValueError(f"padding must be 'square' (the paper's zeros) or 'replicate', got {padding!r}")


def make_upsample_fn(
    model: SRModel, temperature: float = 0.0, padding: Padding = "square"
) -> Callable[[Tensor], Tensor]:
    """``fn(lr uint8 [B, C, h, w]) -> sr uint8 [B, C, s h, s w]`` for :func:`evaluate_sr`.

    The CNF samples at ``temperature`` ($\\tau = 0$: deterministic); the baseline returns its mode.

    Args:
        model: The SR model.
        temperature: Sampling temperature of the CNF.
        padding: ``"square"`` (default, §5.1 of the paper): zeros at the right and bottom to a
            square whose side the flow's squeezes divide, the output cropped to the exact shape;
            ``"replicate"``: the last row and column repeated to the next such multiple.
    """
    device = next(model.parameters()).device
    scale = model.config.scale
    _pad(torch.zeros(1, 1, 1, 1), 1, padding)  # check the name early

    @torch.no_grad()
    def upsample(lr: Tensor) -> Tensor:
        padded, (h, w) = _pad(lr.to(device), _lr_multiple(model), padding)
        return crop_to(model.predict(padded, temperature), (scale * h, scale * w))

    return upsample


@torch.no_grad()
def per_image_bits_per_dim(
    model: SRModel,
    data: torch.utils.data.Dataset,
    max_images: int | None = None,
    progress: bool = False,
    padding: Padding = "replicate",
    only: Sequence[int] | None = None,
) -> list[tuple[float, int]]:
    """``(bits/dim, D)`` of HR given LR for each whole image of a set (padded pixels counted in ``D``).

    Args:
        model: The SR model.
        data: Whole-image ``(lr, hr)`` uint8 pairs.
        max_images: Score only the first this many.
        progress: Report progress (:mod:`cnf_teach.progress`).
        padding: ``"replicate"`` (default here: the padded border looks like the image) or
            ``"square"`` (the paper's zeros, LR and HR alike).
        only: Score only these of the (first ``max_images``) images, e.g. one process's share
            (:class:`cnf_teach.engine.evaluation.Shard`); the rows follow this order.
    """
    device = next(model.parameters()).device
    scale, multiple = model.config.scale, _lr_multiple(model)
    n = len(data) if max_images is None else min(max_images, len(data))
    chosen = range(n) if only is None else [i for i in only if 0 <= i < n]
    out = []
    for i in track(chosen, desc="bits/dim", unit="image", enabled=progress, leave=False):
        lr, hr = data[i]
        lr_p, _ = _pad(lr.unsqueeze(0).to(device), multiple, padding)
        hr_p, _ = _pad(hr.unsqueeze(0).to(device), multiple * scale, padding)
        out.append((model.bits_per_dim(hr_p, lr_p).item(), hr_p[0].numel()))
    return out


@torch.no_grad()
def random_crop_bits_per_dim(
    model: SRModel,
    data: torch.utils.data.Dataset,
    crops: int = 1000,
    crop_size: int = 128,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    only: Sequence[int] | None = None,
) -> list[float]:
    """Bits/dim of ``crops`` random ``crop_size`` x ``crop_size`` HR crops with their aligned LR crops.

    The protocol of §5.1.1 of Winkler et al. 2019 (Table 2's bits/dim: 1000 random 128 x 128
    crops). Each crop picks an image uniformly, then a position uniformly among those aligned
    to the scale (so that the LR crop of the whole LR image is exactly the downscaled HR crop's
    partner). A private generator seeded with ``seed`` makes the crops the same on every run.

    ``only`` scores a subset of the crops (e.g. one process's share, see
    :class:`cnf_teach.engine.evaluation.Shard`): every crop's position is still drawn, so crop
    ``i`` is the same whichever subset it is scored in.

    Returns:
        One bits/dim per scored crop, in crop order (a bound for the CNF, exact for the baseline).

    Raises:
        ValueError: if an image is smaller than the crop, or the crop does not suit the model.
    """
    device = next(model.parameters()).device
    scale = model.config.scale
    if crop_size % (scale * _lr_multiple(model)):
        raise ValueError(f"crop_size {crop_size} must be a multiple of {scale * _lr_multiple(model)} for this model")
    names = list(getattr(data, "names", [f"image_{i}" for i in range(len(data))]))
    pairs = [data[i] for i in range(len(data))]
    for name, (_, hr) in zip(names, pairs, strict=True):
        if min(hr.shape[-2:]) < crop_size:
            raise ValueError(
                f"{name} is {hr.shape[-2]}x{hr.shape[-1]}, smaller than the {crop_size}x{crop_size} crops; "
                "use protocol='whole' or a smaller crop_size"
            )
    g = torch.Generator().manual_seed(seed)
    c = crop_size // scale  # LR crop side
    lr_crops, hr_crops, out = [], [], []
    wanted = None if only is None else set(only)

    def flush() -> None:
        if hr_crops:
            out.extend(model.bits_per_dim(torch.stack(hr_crops).to(device), torch.stack(lr_crops).to(device)).tolist())
            lr_crops.clear()
            hr_crops.clear()

    for k in track(range(crops), desc="bits/dim", unit="crop", enabled=progress, leave=False):
        lr, hr = pairs[int(torch.randint(len(pairs), (1,), generator=g))]
        top = int(torch.randint(lr.shape[-2] - c + 1, (1,), generator=g))  # in LR pixels
        left = int(torch.randint(lr.shape[-1] - c + 1, (1,), generator=g))
        if wanted is not None and k not in wanted:
            continue
        lr_crops.append(lr[:, top : top + c, left : left + c])
        hr_crops.append(hr[:, scale * top : scale * (top + c), scale * left : scale * (left + c)])
        if len(hr_crops) == batch_size:
            flush()
    flush()
    return out


def dataset_bits_totals(
    model: SRModel,
    data: torch.utils.data.Dataset,
    max_images: int | None = None,
    progress: bool = False,
    protocol: Literal["crops", "whole"] = "crops",
    crops: int = 1000,
    crop_size: int = 128,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[float, float]:
    """The additive pieces of :func:`dataset_bits_per_dim` for one process's share of the set.

    Returns ``(total bits, total dims)`` of the crops (or whole images) ``rank, rank +
    world_size, ...``, as bits/dim times dims, so that the shares of all processes add up to the
    set's figure: ``sum(bits) / sum(dims)``. With ``rank=0, world_size=1``, the whole set. Each
    crop counts ``crop_size**2 * 3`` dims, each whole image its padded size. See
    :func:`dataset_bits_per_dim` for the arguments.
    """
    if protocol not in ("crops", "whole"):
        raise ValueError(f"protocol must be 'crops' (the paper's random crops) or 'whole', got {protocol!r}")
    if protocol == "crops":
        n = len(data)
        small = any(min(data[i][1].shape[-2:]) < crop_size for i in range(n))
        if not small:
            mine = range(rank, crops, world_size)
            bits = random_crop_bits_per_dim(model, data, crops, crop_size, seed, progress=progress, only=mine)
            dims = 3 * crop_size * crop_size
            return float(np.sum(bits)) * dims, float(len(bits) * dims)
        logger.info("some images are smaller than %d pixels: bits/dim over whole images instead of crops", crop_size)
    share = range(rank, len(data), world_size)  # per_image_bits_per_dim drops those past max_images
    rows = per_image_bits_per_dim(model, data, max_images, progress, only=share)
    return float(sum(b * d for b, d in rows)), float(sum(d for _, d in rows))


def dataset_bits_per_dim(
    model: SRModel,
    data: torch.utils.data.Dataset,
    max_images: int | None = None,
    progress: bool = False,
    protocol: Literal["crops", "whole"] = "crops",
    crops: int = 1000,
    crop_size: int = 128,
    seed: int = 0,
) -> float:
    """Bits/dim of HR given LR over a set (a bound for the CNF, exact for the baseline).

    Args:
        model: The SR model.
        data: Whole-image ``(lr, hr)`` uint8 pairs.
        max_images: With ``protocol="whole"``, score only the first this many.
        progress: Report progress (:mod:`cnf_teach.progress`).
        protocol: ``"crops"`` (default, §5.1.1 of the paper): the mean over ``crops`` random
            ``crop_size`` x ``crop_size`` crops (:func:`random_crop_bits_per_dim`). If an image
            is smaller than the crop (e.g. ImageNet32/64 validation images), the set is scored
            whole instead, and a log message says so. ``"whole"``: every image whole, padded at
            the right and bottom (edge replicated), the dimension-weighted mean
            $-\\sum_i \\log_2 P(y_i \\mid x_i) / \\sum_i D_i$.
        crops: Number of crops.
        crop_size: HR crop side.
        seed: Seed of the crops.
    """
    bits, dims = dataset_bits_totals(model, data, max_images, progress, protocol, crops, crop_size, seed)
    return bits / dims
