"""What the ``seg`` commands read: DRIVE folders, ``seg train`` checkpoints, shipped vessel models.

Each reader turns every problem with the user's input (a bad folder, a damaged checkpoint,
another task's file, an unknown ``--pretrained`` name) into a one-line usage error.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from .. import pretrained
from .common import usage_error

#: The smallest photograph side (pixels, after downscaling) the vessel models take.
MIN_SIDE = 16

__all__ = [
    "MIN_SIDE",
    "checked_downscale",
    "load_seg_checkpoint",
    "model_from_args",
    "read_dataset",
    "stored_downscale",
]


def checked_downscale(value: float | None, default: float) -> float:
    """``--downscale`` as given, or ``default`` when absent; at least 1 (2 halves each side)."""
    factor = default if value is None else value
    if not factor >= 1:  # also refuses NaN
        raise usage_error(f"--downscale must be at least 1 (2 halves each side, giving DRIVE at 292x282), got {factor}")
    return float(factor)


def stored_downscale(extra: Any) -> float:
    """The downscale factor a ``seg train`` run stored in its checkpoint (1 when it stored none)."""
    value = extra.get("downscale") if isinstance(extra, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 1 <= value <= 64
    return float(value) if ok else 1.0  # a crafted or damaged value falls back to full size


def read_dataset(root: str, split: str, **kwargs: Any):
    from ..data.drive import DriveDataset, DriveFormatError

    if not Path(root).is_dir():
        raise usage_error(f"no DRIVE folder at {root}; pass --data with a folder holding training/ and test/")
    try:
        dataset = DriveDataset(root, split, **kwargs)
    except (DriveFormatError, ValueError) as err:
        raise usage_error(str(err)) from err
    h, w = dataset.images[0].image.shape[:2]
    if min(h, w) < MIN_SIDE:  # the VGG conditioner's pooling needs some pixels to pool
        raise usage_error(
            f"the {split} photographs of {root} are {h}x{w} after --downscale {kwargs.get('downscale', 1.0):g}; "
            f"the model needs at least {MIN_SIDE} pixels a side, use a smaller --downscale"
        )
    return dataset


def load_seg_checkpoint(path: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a vessel model from a ``seg train`` checkpoint, read without running code from it.

    Every problem with the file (not found, not a checkpoint, damaged, an older pickled one,
    another task's, a config or tensors that do not make this model) is a one-line usage error.
    """
    from ..engine import load_checkpoint
    from ..vessels.checkpoint import model_from_checkpoint

    try:
        ckpt = load_checkpoint(path, map_location="cpu")
        model = model_from_checkpoint(ckpt, path)
    except (FileNotFoundError, ValueError) as err:
        raise usage_error(str(err)) from None
    return model.to(device).eval(), ckpt


def model_from_args(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, str, float]:
    """``(model, kind, training downscale factor)`` from ``--checkpoint`` or ``--pretrained``."""
    if args.pretrained is not None:
        try:
            model, kind = pretrained.load_for_task(args.pretrained, "seg", device)
        except ValueError as err:
            raise usage_error(str(err)) from None
        return model, kind, 1.0
    model, ckpt = load_seg_checkpoint(args.checkpoint, device)
    return model, ckpt["extra"]["model"], stored_downscale(ckpt["extra"])
