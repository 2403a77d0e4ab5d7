"""Small tensor helpers shared by every module: reductions and input checks.

The checks raise ``ValueError`` with a message that names the problem and the fix,
so that a learner who passes a wrong shape learns what to change.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["sum_except_batch", "check_condition", "check_finite"]


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum every dimension but the first: ``[B, ...] -> [B]``."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def check_condition(layer: nn.Module, y: Tensor, h: Tensor | None, channels: int) -> None:
    """Check that conditioning features ``h`` fit input ``y``, with an error that says how to fix it.

    Args:
        layer: The layer doing the check (named in the message).
        y: The layer's input, ``[B, C, ...]``.
        h: Conditioning features, ``[B, channels, ...]`` with the same trailing size as ``y``.
        channels: Conditioning channels the layer was built for (0 = unconditional).
    """
    name = type(layer).__name__
    if channels == 0:
        if h is not None:
            raise ValueError(
                f"{name} was built unconditional (cond_channels=0) but got conditioning features "
                f"h of shape {tuple(h.shape)}; build it with cond_channels={h.shape[1]} or pass h=None"
            )
        return
    if h is None:
        raise ValueError(f"{name} was built with cond_channels={channels} and needs h; pass h=g(x)")
    if h.shape[0] != y.shape[0] or h.shape[1] != channels or h.shape[2:] != y.shape[2:]:
        raise ValueError(
            f"{name}: conditioning features h have shape {tuple(h.shape)} but this layer expects "
            f"[{y.shape[0]}, {channels}, {', '.join(str(s) for s in y.shape[2:])}] for input of shape "
            f"{tuple(y.shape)}; bring h to the input's batch and spatial size (e.g. interpolate it)"
        )


def check_finite(name: str, t: Tensor) -> None:
    """Raise a ``ValueError`` if ``t`` holds NaN or infinity."""
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); clean the input (e.g. torch.nan_to_num) "
            "or check the data pipeline before computing a likelihood"
        )
