"""What an SR checkpoint stores to rebuild its model, and the rebuild itself.

The ``extra`` entry of an ``sr`` checkpoint (see :mod:`cnf_teach.engine.checkpoint` for the
format) is ``{"kind": "cnf" | "baseline", "sr_config": SRConfig as a dict}``; a weights file
for a released model needs only ``task="sr"``, ``model`` and this ``extra``.
"""

from __future__ import annotations

from typing import Any, Literal

from ..engine.checkpoint import CheckpointError, check_config, rebuild_model
from .config import SRConfig
from .model import SRModel, build_sr_model

__all__ = ["SR_CONFIG_LIMITS", "model_from_checkpoint", "sr_checkpoint_state", "sr_model_spec"]

#: Bounds of the sizes and counts of a stored :class:`SRConfig`, checked before a model is built
#: (generous: the paper's models are far inside them).
SR_CONFIG_LIMITS: dict[str, tuple[float, float]] = {
    "scale": (2, 16),
    "channels": (1, 4),
    "levels": (1, 8),
    "steps": (1, 64),
    "hidden": (1, 4096),
    "prior_hidden": (1, 4096),
    "rrdb_features": (1, 1024),
    "rrdb_blocks": (0, 64),
    "rrdb_growth": (1, 1024),
    "baseline_growth": (1, 1024),
    "deq_steps": (0, 64),
    "deq_hidden": (1, 4096),
    "patch": (1, 8192),
    "batch_size": (1, 65536),
    "lr": (0, 10),
    "train_steps": (1, 10**9),
    "warmup_steps": (0, 10**9),
    "grad_clip": (0, 1e9),
}


def sr_checkpoint_state(config: SRConfig, kind: Literal["cnf", "baseline"]) -> dict[str, Any]:
    """What SR training stores as the checkpoint's ``extra`` entry, to rebuild the model."""
    return {"sr_config": config.to_dict(), "kind": kind}


def sr_model_spec(ckpt: dict[str, Any], source: str = "the checkpoint") -> tuple[str, dict[str, Any]]:
    """``(kind, sr_config dict)`` of an SR checkpoint, checked to be present.

    Raises:
        CheckpointError: another task's checkpoint, or one without the SR model's description.
    """
    task = ckpt.get("task")
    if task != "sr":
        raise CheckpointError(
            f"{source} is a {task!r} checkpoint, not super-resolution; use 'cnf-teach {task} ...' for it"
        )
    extra = ckpt.get("extra")
    if not isinstance(extra, dict) or not isinstance(extra.get("sr_config"), dict):
        raise CheckpointError(
            f"{source} has no SR model config (extra.sr_config); pass a checkpoint written by 'cnf-teach sr train'"
        )
    kind = extra.get("kind", "cnf")
    if kind not in ("cnf", "baseline"):
        raise CheckpointError(f"{source} names an unknown SR model kind {kind!r}; known: cnf, baseline")
    check_config(extra["sr_config"], SR_CONFIG_LIMITS, source, "extra.sr_config")
    return kind, extra["sr_config"]


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "the checkpoint") -> SRModel:
    """Rebuild an SR model from a checkpoint dict (see :func:`cnf_teach.engine.load_checkpoint`).

    Raises:
        CheckpointError: (a ``ValueError``, one line) another task's checkpoint, a config that
            builds no model, or tensors that do not fit it.
    """
    kind, config = sr_model_spec(ckpt, source)
    model = rebuild_model(lambda: build_sr_model(SRConfig.from_dict(config), kind), ckpt["model"], source)
    return model.eval()
