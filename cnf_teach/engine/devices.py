"""Device resolution (``"auto"`` picks CUDA, then Apple's MPS, then the CPU) and what compiles where."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["compile_unavailable", "resolve_device", "to_device"]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, then MPS, then CPU; otherwise check that ``name`` is usable.

    Raises:
        ValueError: the device is unknown or not available on this machine.
    """
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available here; use --device auto or cpu")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError("device 'mps' requested but MPS is not available here; use --device auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device`` (non-blocking where it can)."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def compile_unavailable(device: torch.device, backend: str = "inductor") -> str | None:
    """Why ``torch.compile`` cannot train on ``device`` with ``backend`` here, or ``None`` when it can.

    CUDA compiles with Triton; the CPU with Inductor's C++ code generation, which needs a C++
    compiler (``$CXX``, ``c++``, ``g++`` or ``clang++`` on the ``PATH``); backends that generate
    no code (``"aot_eager"``, ``"eager"``) need none. MPS is not supported.

    Examples:
        >>> import torch
        >>> from cnf_teach.engine.devices import compile_unavailable
        >>> compile_unavailable(torch.device("cpu"), backend="aot_eager") is None
        True
        >>> compile_unavailable(torch.device("mps"))
        'torch.compile is not supported for training on mps'
    """
    if device.type == "cuda":
        return None
    if device.type == "cpu" and backend != "inductor":
        return None
    if device.type == "cpu":
        names = [os.environ.get("CXX", ""), "c++", "g++", "clang++", "cl"]
        if any(name and shutil.which(name) for name in names):
            return None
        return "no C++ compiler found (set CXX or install g++ or clang++)"
    return f"torch.compile is not supported for training on {device.type}"
