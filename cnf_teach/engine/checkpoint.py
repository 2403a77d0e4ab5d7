"""Checkpoints: the random state of every generator, atomic saves and loading.

A checkpoint is a dict with the model, optimizer and scheduler states, the step, the random
state of every generator and the task's own entries; written to a temporary file and renamed, so
a crash while writing leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["CHECKPOINT_NAME", "load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]

#: File name of the rolling checkpoint inside ``TrainConfig.out_dir``.
CHECKPOINT_NAME = "last.pt"


def rng_state(loader: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - saving the legacy global state that pipelines use
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        state["loader"] = gen.get_state()
    return state


def set_rng_state(state: Mapping[str, Any], loader: Any = None) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than when saved
            torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if "loader" in state and isinstance(gen, torch.Generator):
        gen.set_state(state["loader"])


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: to ``path.tmp``, then rename over ``path``.

    A crash while writing leaves the previous checkpoint untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the engine.

    Returns:
        A dict with at least ``"task"`` (``"sr"`` or ``"seg"``), ``"config"`` (the
        :class:`TrainConfig` as a dict), ``"model"`` (state dict), ``"optimizer"``,
        ``"scheduler"``, ``"step"``, ``"rng"``, ``"data"`` and ``"extra"`` (whatever the
        task stored, e.g. its model config).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a checkpoint of this package.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        # Our own files hold numpy RNG states and config dicts, hence weights_only=False.
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or "task" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not a cnf_teach checkpoint (no 'task'/'model' entries)")
    return ckpt
