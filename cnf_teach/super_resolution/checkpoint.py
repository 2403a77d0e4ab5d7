"""What an SR checkpoint stores to rebuild its model, and the rebuild itself."""

from __future__ import annotations

from typing import Any, Literal

from .config import SRConfig
from .model import SRModel, build_sr_model

__all__ = ["model_from_checkpoint", "sr_checkpoint_state"]


def sr_checkpoint_state(config: SRConfig, kind: Literal["cnf", "baseline"]) -> dict[str, Any]:
    """What SR training stores as the checkpoint's ``extra`` entry, to rebuild the model."""
    return {"sr_config": config.to_dict(), "kind": kind}


def model_from_checkpoint(ckpt: dict[str, Any]) -> SRModel:
    """Rebuild an SR model from a checkpoint dict (see :func:`cnf_teach.engine.load_checkpoint`).

    Raises:
        ValueError: the checkpoint is not from SR training.
    """
    extra = ckpt.get("extra") or {}
    if ckpt.get("task") != "sr" or "sr_config" not in extra:
        raise ValueError(f"not a super-resolution checkpoint (task {ckpt.get('task')!r})")
    model = build_sr_model(SRConfig.from_dict(extra["sr_config"]), extra.get("kind", "cnf"))
    model.load_state_dict(ckpt["model"])
    return model.eval()
