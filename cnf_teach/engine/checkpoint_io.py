"""Writing and reading checkpoint files: atomic saves, and loading that never runs code from the file.

:func:`save_checkpoint` checks a state and writes it atomically; :func:`save_weights` writes a
*weights* file. :func:`load_checkpoint` reads one with PyTorch's restricted unpickler
(``weights_only=True``) after checking the bytes (a PyTorch zip archive, every member's checksum
intact) and the objects its pickle names, so that a damaged, older or hostile file is refused
with one line. The format is described in :mod:`cnf_teach.engine.checkpoint`. Its own file
because it is the only code that touches the disk; :mod:`.legacy` builds on it.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint_validation import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CONVERT_HINT,
    CheckpointError,
    check_plain,
    first_line,
    validate_checkpoint,
)

__all__ = ["ZIP_MAGIC", "check_archive", "load_checkpoint", "save_checkpoint", "save_weights"]

#: The first bytes of a zip archive, which every checkpoint in the safe format is.
ZIP_MAGIC = b"PK\x03\x04"


# --- saving ------------------------------------------------------------------------------------
def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` as a checkpoint, atomically: to ``path.tmp``, then renamed over ``path``.

    The ``format`` and ``version`` entries are added; the rest is checked to be tensors and plain
    data (so that it loads with ``weights_only``) and to have the structure of the format. A crash
    while writing, or a state that fails the checks, leaves the previous file at ``path`` whole.

    Raises:
        CheckpointError: ``state`` holds an object that is not plain data, or an entry is malformed.
    """
    path = Path(path)
    ckpt = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION}
    ckpt.update({k: v for k, v in state.items() if k not in ("format", "version")})
    check_plain(ckpt, "checkpoint")
    validate_checkpoint(ckpt, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_weights(
    path: str | os.PathLike,
    task: str,
    model: nn.Module | Mapping[str, torch.Tensor],
    extra: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a *weights* checkpoint (no optimizer or random state), e.g. for released models.

    Args:
        path: Destination (written atomically).
        task: The application (``"sr"``, ``"seg"``), checked by the commands that read it.
        model: The model, or its state dict; tensors are stored on the CPU.
        extra: The task's description of the model (what its training checkpoints store as
            ``extra``, e.g. :func:`cnf_teach.super_resolution.checkpoint.sr_checkpoint_state`).
        meta: Plain-data provenance (data, steps, date, licence).
    """
    state = model.state_dict() if isinstance(model, nn.Module) else model
    entry: dict[str, Any] = {"task": task, "model": {k: v.detach().cpu() for k, v in state.items()}}
    if extra is not None:
        entry["extra"] = dict(extra)
    if meta is not None:
        entry["meta"] = dict(meta)
    return save_checkpoint(entry, path)


# --- loading -----------------------------------------------------------------------------------
def _pickled_objects_message(path: Path, names: list[str]) -> str:
    if names and all(n.startswith("numpy.") for n in names):
        what = "an older cnf-teach checkpoint, which pickled NumPy objects"
    elif names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        what = f"pickled Python objects: {shown}"
    else:
        what = "pickled Python objects"
    return (
        f"{path} was not loaded: it holds {what}, and unpickling can run arbitrary code. If you trust its "
        f"origin, convert it once: {CONVERT_HINT.format(path=path)} --trust-pickle"
    )


def _unsafe_globals(path: Path) -> list[str]:
    """The Python objects the file's pickle refers to beyond the allowed ones (read, never run)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - only used to word the message; the safe loader decides
        return []


def check_archive(path: Path) -> None:
    """Raise unless ``path`` is an intact PyTorch zip archive (every member's checksum is verified)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not any(n.count("/") == 1 and n.endswith("/data.pkl") for n in names):
                raise CheckpointError(f"{path} is not a readable checkpoint (a zip archive, but not a PyTorch file)")
            bad = archive.testzip()
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure to read the archive means damage
        raise CheckpointError(
            f"{path} is not a readable checkpoint: damaged or truncated ({first_line(err)})"
        ) from None
    if bad is not None:
        raise CheckpointError(f"{path} is not a readable checkpoint: damaged ({bad} fails its checksum)")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running any code from it, and check its structure.

    Returns:
        The checkpoint dict (see :mod:`cnf_teach.engine.checkpoint`): always ``format``, ``version``, ``task``
        and ``model``; ``extra`` for every task's model; the training entries for training
        checkpoints.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: (a ``ValueError``) anything else, in one line: not a checkpoint, damaged,
            an older pickled checkpoint (with the command that converts it), a missing entry.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file")
    if not path.is_file():  # a FIFO, socket or device: reading it could wait forever
        raise CheckpointError(f"{path} is not a regular file; pass a checkpoint file")
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"cannot read {path} ({first_line(err)})") from None
    if not head:
        raise CheckpointError(f"{path} is not a readable checkpoint (the file is empty)")
    if head != ZIP_MAGIC:
        if head[:1] == b"\x80":  # a pickle: a bare one, or PyTorch's legacy (pre-zip) format
            raise CheckpointError(_pickled_objects_message(path, []))
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch file)")
    check_archive(path)
    unsafe = _unsafe_globals(path)
    if unsafe:
        raise CheckpointError(_pickled_objects_message(path, unsafe))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise CheckpointError(_pickled_objects_message(path, [])) from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint: damaged or truncated ({first_line(err)})"
        ) from None
    except Exception as err:  # noqa: BLE001 - any other failure of the safe loader means damage
        raise CheckpointError(
            f"{path} is not a readable checkpoint: damaged or truncated ({first_line(err)})"
        ) from None
    return validate_checkpoint(ckpt, str(path))
