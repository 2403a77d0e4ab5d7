"""What an SR checkpoint stores to rebuild its model, and the rebuild itself.

The ``extra`` entry of an ``sr`` checkpoint (see :mod:`cnf_teach.engine.checkpoint` for the
format) is ``{"kind": "cnf" | "baseline", "sr_config": SRConfig as a dict}``; a weights file
for a released model needs only ``task="sr"``, ``model`` and this ``extra``.
"""

from __future__ import annotations

from typing import Any, Literal

from ..engine.checkpoint import CheckpointError, rebuild_model
from .config import SRConfig
from .model import SRModel, build_sr_model

__all__ = ["model_from_checkpoint", "sr_checkpoint_state", "sr_model_spec"]


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
