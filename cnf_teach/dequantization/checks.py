"""Input checks of the dequantizers: bin indices in $\\{0, \\dots, K-1\\}$, masks of exact 0s and 1s.

A dequantizer turns each discrete value $y$ into noise in the region of $y$; on data that are
not what it assumes (pixels already scaled to $[0, 1]$, a soft mask) the bound it returns is a
number without meaning, and nothing else would notice. :func:`check_discrete` and
:func:`check_binary` say what is wrong and how to fix it. Each costs one host sync and is skipped
inside ``torch.compile``; validate the data on the loader's side there.

:func:`keep_in_bin` guards the other edge of the same contract: a sample computed in floating
point must stay in the bin of its $y$.

Its own file because every dequantizer (and :mod:`cnf_teach.baselines`, for the same data) calls
these checks, and the bin guard is shared by uniform noise and the learned map into a bin.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..utils import is_compiling

__all__ = ["check_binary", "check_discrete", "keep_in_bin"]


def check_discrete(y: Tensor, num_bins: int, name: str = "y") -> None:
    """Raise ``ValueError`` unless ``y`` holds integers in $\\{0, \\dots, K-1\\}$.

    One host sync when the data are valid (none inside ``torch.compile``, where the check
    is skipped); the diagnosis of what is wrong runs only after it failed.

    Args:
        y: Discrete data, any shape, integer or float dtype.
        num_bins: $K$.
        name: Name used in the message.
    """
    if y.dim() < 2:
        raise ValueError(f"{name} must be batched, [B, D] or [B, C, H, W]; got shape {tuple(y.shape)}")
    if is_compiling():
        return
    ok = (y >= 0) & (y <= num_bins - 1)
    if y.is_floating_point():
        ok = ok & (y == torch.round(y))  # NaN fails every comparison, inf fails the range
    if bool(ok.all()):
        return
    if y.is_floating_point() and not bool(torch.isfinite(y).all()):
        bad = (~torch.isfinite(y)).sum().item()
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); clean the input (e.g. torch.nan_to_num) "
            "or check the data pipeline before computing a likelihood"
        )
    if y.is_floating_point() and not torch.equal(y, torch.round(y)):
        raise ValueError(
            f"{name} must hold integers in {{0, ..., {num_bins - 1}}} (bin indices), but it has non-integer "
            f"values; pass the raw k-bit data (e.g. uint8 pixels), not data already scaled to [0, 1]"
        )
    lo, hi = y.min().item(), y.max().item()
    raise ValueError(
        f"{name} must lie in {{0, ..., {num_bins - 1}}} for num_bins={num_bins}, got values in [{lo:g}, {hi:g}]; "
        f"build the dequantizer with the data's number of levels (256 for 8-bit, 2 for masks)"
    )


def check_binary(y: Tensor, name: str = "y") -> None:
    """Raise ``ValueError`` unless every entry of ``y`` is exactly 0 or 1 (one host sync; skipped when compiling)."""
    if y.dim() < 2:
        raise ValueError(f"{name} must be batched, [B, D] or [B, C, H, W]; got shape {tuple(y.shape)}")
    if is_compiling():
        return
    if not bool(((y == 0) | (y == 1)).all()):
        bad = y[(y != 0) & (y != 1)]
        raise ValueError(
            f"binary dequantization needs exactly binary {name} (every entry 0 or 1), but {bad.numel()} "
            f"entries are not (e.g. {bad.flatten()[0].item():g}); threshold the mask first, e.g. (y > 0.5).float()"
        )


def keep_in_bin(v: Tensor, y: Tensor, num_bins: int) -> Tensor:
    """Clamp $v$ into $[y/K, (y+1)/K)$ *in floating point*.

    $(y + u)/K$ with $u < 1$ can round up to $(y+1)/K$ (in float32, $255 + u$ rounds to 256
    for $u > 1 - 2^{-17}$); such a sample would sit in the next bin. The clamp moves it
    to the largest float below the edge and changes nothing else.
    """
    lo = y / num_bins
    hi = (y + 1) / num_bins
    return torch.minimum(torch.maximum(v, lo), torch.nextafter(hi, hi - 1))


_keep_in_bin = keep_in_bin  # the name before it was public
