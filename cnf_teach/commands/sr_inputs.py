"""What the ``sr`` commands read: image sets, checkpoints of SR models and shipped models.

Each reader turns every problem with the user's input (a missing folder, a damaged checkpoint,
another task's file, an unknown ``--pretrained`` name) into a one-line usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .. import pretrained
from .common import usage_error

__all__ = ["is_imagenet_folder", "load_model", "model_from_args", "read_eval_set", "read_sr_checkpoint"]


def is_imagenet_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*_data_batch_*.npz")) or (path / "val_data.npz").is_file()


def read_eval_set(folder: str, scale: int, imagenet_split: str = "val") -> Any:
    """Whole-image (LR, HR) pairs of one folder of images, or of a downsampled-ImageNet folder.

    Args:
        folder: An image folder, or a folder of downsampled-ImageNet npz files.
        scale: SR factor.
        imagenet_split: Which ImageNet images: ``"val"`` (ImageNet's validation file, the paper's
            test set; for ``sr eval``) or ``"holdout"`` (the 10,000 held-out training images, the
            paper's validation set; for validation during ``sr train``).
    """
    from ..data.imagenet import DownsampledImageNet
    from ..data.images import SRImageFolder

    path = Path(folder)
    try:
        if is_imagenet_folder(path):
            return DownsampledImageNet(path, imagenet_split, scale=scale)
        return SRImageFolder(path, scale=scale)
    except ValueError as err:
        raise usage_error(err) from None


def read_sr_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint at ``path``, read without running code and checked to describe an SR model."""
    from ..engine import load_checkpoint
    from ..errors import UsageError
    from ..super_resolution.checkpoint import sr_model_spec

    try:
        ckpt = load_checkpoint(path)
        sr_model_spec(ckpt, path)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} not found; pass the last.pt written by 'cnf-teach sr train'") from None
    except ValueError as err:
        raise usage_error(err) from None
    return ckpt


def model_from_args(args: argparse.Namespace, device: torch.device) -> Any:
    """The model named by ``--checkpoint`` or ``--pretrained`` (exactly one of them)."""
    from ..errors import UsageError

    if (args.checkpoint is None) == (args.pretrained is None):
        raise UsageError("pass either --checkpoint CKPT or --pretrained NAME (one of them)")
    if args.pretrained is not None:
        try:
            return pretrained.load_for_task(args.pretrained, "sr", device)[0]
        except ValueError as err:
            raise usage_error(err) from None
    return load_model(args.checkpoint, device)


def load_model(path: str, device: torch.device) -> Any:
    from ..super_resolution.checkpoint import model_from_checkpoint

    ckpt = read_sr_checkpoint(path)
    try:
        return model_from_checkpoint(ckpt, path).to(device)
    except ValueError as err:
        raise usage_error(err) from None
