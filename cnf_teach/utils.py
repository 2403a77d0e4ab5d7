"""Small tensor helpers shared by every module: reductions, precision and input checks.

The checks raise ``ValueError`` with a message that names the problem and the fix,
so that a learner who passes a wrong shape learns what to change. They cost a
host-device synchronisation each, so they run eagerly only: inside ``torch.compile``
they are skipped (validate the data on the loader's side there).

Precision. Under mixed precision (``torch.autocast`` with bf16 or fp16) the coupling
and conditioning *networks* may run in low precision, but the *bijection arithmetic* may
not: one 8-bit bin is $1/256$ wide, bf16 resolves about 3 significant digits, and a
1x1 convolution or a log-determinant rounded to bf16 stops being an exact bijection
(and bits/dim drift). :func:`high_precision` gives the dtype to compute in,
:func:`to_high_precision` casts to it, and :func:`autocast_off` switches autocast off
for a block of bijection arithmetic.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import Tensor, nn

__all__ = [
    "autocast_off",
    "check_condition",
    "check_finite",
    "high_precision",
    "is_compiling",
    "process_share",
    "sum_except_batch",
    "to_high_precision",
]


def high_precision(dtype: torch.dtype) -> torch.dtype:
    """The dtype to do bijection arithmetic in: float32 for bf16, fp16 and integers; float64 stays."""
    return torch.promote_types(dtype, torch.float32)


def to_high_precision(t: Tensor) -> Tensor:
    """``t`` in at least float32 (a no-op for float32 and float64 tensors)."""
    return t.to(high_precision(t.dtype))


def autocast_off(t: Tensor) -> AbstractContextManager:
    """A context in which autocast is disabled on ``t``'s device, so matmuls run in the inputs' dtype.

    Devices without autocast get a no-op context.
    """
    device_type = t.device.type
    if device_type in ("cpu", "cuda", "mps", "xpu"):
        return torch.autocast(device_type=device_type, enabled=False)
    return nullcontext()


def is_compiling() -> bool:
    """Whether the code runs inside ``torch.compile``'s tracing (input checks are skipped there)."""
    return torch.compiler.is_compiling()


def process_share() -> tuple[int, int]:
    """``(rank, world size)`` of this process: from ``torch.distributed`` once it is joined, else
    from the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``), else ``(0, 1)``.

    Reading the environment lets a data loader size its share before the training engine has
    joined the process group.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum every dimension but the first: ``[B, ...] -> [B]``, accumulated in at least float32."""
    return x.reshape(x.shape[0], -1).sum(dim=1, dtype=high_precision(x.dtype))


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
    """Raise a ``ValueError`` if ``t`` holds NaN or infinity (one host sync; skipped under ``torch.compile``)."""
    if is_compiling():
        return
    if not bool(torch.isfinite(t).all()):
        bad = (~torch.isfinite(t)).sum().item()
        raise ValueError(
            f"{name} contains {bad} NaN/inf value(s); clean the input (e.g. torch.nan_to_num) "
            "or check the data pipeline before computing a likelihood"
        )
