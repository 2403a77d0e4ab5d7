"""Pretrained models that ship with the package, so the applied chapters show the paper's effects in minutes.

Each model is two files in ``cnf_teach/pretrained/weights/``: ``NAME.pt``, a weights checkpoint in
the package's safe format (:func:`cnf_teach.engine.save_weights`: tensors and plain data only, read
without running code) holding the parameters in float16 and the model's config, and ``NAME.json``,
its manifest: the model's config, the seed,
the steps, wall and CPU time, the training curve, the evaluation metrics measured on the
float16 weights, and the command that reproduces it (``make pretrained`` or
``python -m cnf_teach.pretrained NAME``; see :mod:`cnf_teach.pretrained.recipes`).

Examples:
    >>> from cnf_teach import pretrained
    >>> sorted(pretrained.available())[:2]  # doctest: +SKIP
    ['seg-baseline', 'seg-cnf-binary']
    >>> model = pretrained.load("sr-cnf-small")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["WEIGHTS", "available", "load", "load_for_task", "manifest", "model_from_weights"]

#: Folder holding ``NAME.pt`` and ``NAME.json`` for every shipped model.
WEIGHTS = Path(__file__).resolve().parent / "weights"


def available(folder: str | Path | None = None) -> list[str]:
    """Names of the models whose weights and manifest are both present."""
    folder = Path(folder) if folder is not None else WEIGHTS
    return sorted(p.stem for p in folder.glob("*.json") if p.with_suffix(".pt").is_file())


def manifest(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """The manifest of model ``name`` (config, seed, steps, times, curve, metrics, command)."""
    folder = Path(folder) if folder is not None else WEIGHTS
    known = available(folder)
    if name not in known:  # a name, never a path: only the models in the folder
        hint = "pass a model's name, not a path"
        if _plain_name(name):
            hint = f"build it with `make pretrained MODEL={name}`"
        raise ValueError(f"no pretrained model {name!r} (available: {', '.join(known) or 'none'}); {hint}")
    try:
        return json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"the manifest of pretrained model {name!r} cannot be read ({err})") from None


def _plain_name(name: str) -> bool:
    """Whether ``name`` could be a model's name: not empty, no folder separators, not ``.`` or ``..``."""
    return bool(name) and not any(c in name for c in "/\\\0:") and name not in (".", "..")


def load(name: str, device: str | torch.device = "cpu", folder: str | Path | None = None) -> nn.Module:
    """Model ``name`` with its shipped weights, in eval mode, in float32 on ``device``.

    Args:
        name: One of :func:`available`.
        device: Where to put the model.
        folder: Another folder of weights and manifests (default: the package's own).

    Raises:
        ValueError: unknown name, or weights that do not fit the manifest's architecture.
    """
    folder = Path(folder) if folder is not None else WEIGHTS
    manifest(name, folder)  # a clear error for unknown names
    return model_from_weights(folder / f"{name}.pt").to(device).eval()


def model_from_weights(path: str | Path) -> nn.Module:
    """Rebuild a model from a weights checkpoint (float16 tensors are cast to the model's float32).

    Raises:
        ValueError: (one line) the file is not a readable checkpoint or does not describe a model.
    """
    from ..engine import load_checkpoint

    ckpt = load_checkpoint(path)
    ckpt["model"] = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    if ckpt["task"] == "sr":
        from ..super_resolution.checkpoint import model_from_checkpoint
    elif ckpt["task"] == "seg":
        from ..vessels.checkpoint import model_from_checkpoint
    else:
        raise ValueError(f"{path} holds a model of unknown task {ckpt['task']!r}")
    return model_from_checkpoint(ckpt, str(path))


def load_for_task(name: str, task: str, device: str | torch.device = "cpu") -> tuple[nn.Module, str]:
    """``(model, kind)`` of pretrained model ``name``, checked to belong to ``task`` (for the CLI's ``--pretrained``).

    Raises:
        ValueError: (one line) unknown name, or a model of the other task.
    """
    meta = manifest(name)
    if meta.get("task") != task:
        same = [n for n in available() if manifest(n).get("task") == task]
        raise ValueError(
            f"pretrained model {name!r} is a {meta.get('task')!r} model; for this command use one of {', '.join(same)}"
        )
    return load(name, device), str(meta.get("kind"))
