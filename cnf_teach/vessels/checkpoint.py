"""What a vessel checkpoint stores to rebuild its model, and the rebuild itself.

The ``extra`` entry of a ``seg`` checkpoint (see :mod:`cnf_teach.engine.checkpoint` for the
format) is ``{"model": "cnf_binary" | "cnf_uniform" | "baseline", "seg_config": SegConfig as a
dict, "data": the training folder}``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..engine.checkpoint import CheckpointError, check_config, rebuild_model
from .config import SegConfig
from .model import MODEL_KINDS, build_seg_model

__all__ = ["SEG_CONFIG_LIMITS", "model_from_checkpoint", "seg_checkpoint_state", "seg_model_spec"]

#: Bounds of the sizes and counts of a stored :class:`SegConfig`, checked before a model is built
#: (generous: the paper's DRIVE model is far inside them).
SEG_CONFIG_LIMITS: dict[str, tuple[float, float]] = {
    "in_channels": (1, 4),
    "levels": (1, 8),
    "steps": (1, 64),
    "vgg_widths": (1, 4096),
    "vgg_convs": (1, 16),
    "coupling_hidden": (1, 4096),
    "prior_hidden": (1, 4096),
    "deq_steps": (0, 64),
    "deq_hidden": (1, 4096),
    "deq_features": (1, 4096),
    "beta": (0, 1),
    "pad_to": (4, 8192),
    "lr": (0, 10),
    "batch_size": (1, 4096),
    "epochs": (1, 10**7),
    "eval_samples": (1, 10_000),
}


def seg_checkpoint_state(config: SegConfig, kind: str, data: str | None = None) -> dict[str, Any]:
    """What vessel training stores as the checkpoint's ``extra`` entry, to rebuild the model."""
    return {"model": kind, "seg_config": config.to_dict(), "data": data}


def seg_model_spec(ckpt: dict[str, Any], source: str = "the checkpoint") -> tuple[str, dict[str, Any]]:
    """``(kind, seg_config dict)`` of a vessel checkpoint, checked to be present.

    Raises:
        CheckpointError: another task's checkpoint, or one without the vessel model's description.
    """
    task = ckpt.get("task")
    if task != "seg":
        raise CheckpointError(
            f"{source} is a checkpoint of the {task!r} task, not of vessel segmentation; "
            f"use `cnf-teach {task}` with it, or pass a `seg train` checkpoint"
        )
    extra = ckpt.get("extra")
    if not isinstance(extra, dict) or not isinstance(extra.get("seg_config"), dict):
        raise CheckpointError(f"{source} has no vessel model config (extra.seg_config); pass a `seg train` checkpoint")
    kind = extra.get("model")
    if kind not in MODEL_KINDS:
        raise CheckpointError(f"{source} names an unknown vessel model kind {kind!r}; known: {', '.join(MODEL_KINDS)}")
    check_config(extra["seg_config"], SEG_CONFIG_LIMITS, source, "extra.seg_config")
    return kind, extra["seg_config"]


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "the checkpoint") -> nn.Module:
    """Rebuild a vessel model from a checkpoint dict (see :func:`cnf_teach.engine.load_checkpoint`).

    Raises:
        CheckpointError: (a ``ValueError``, one line) another task's checkpoint, a config that
            builds no model, or tensors that do not fit it.
    """
    kind, config = seg_model_spec(ckpt, source)
    model = rebuild_model(lambda: build_seg_model(kind, SegConfig.from_dict(config)), ckpt["model"], source)
    return model.eval()
