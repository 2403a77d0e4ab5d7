"""Converting a checkpoint of an older release (pickled NumPy objects) to the current, safe format.

Older releases pickled NumPy random states and scalars, so reading their checkpoints means
*unpickling*, which runs whatever code a crafted file asks for: :func:`load_checkpoint` refuses
them, and :func:`convert_legacy_checkpoint` (``cnf-teach convert-checkpoint OLD NEW
--trust-pickle``) rewrites a file one trusts. Its own file because it is the one place that may
call the unrestricted unpickler, and only when asked to.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint_io import ZIP_MAGIC, check_archive, load_checkpoint, save_checkpoint
from .checkpoint_validation import CheckpointError, first_line
from .random_state import native_rng_to_plain

__all__ = ["convert_legacy_checkpoint"]


def _to_plain(value: Any) -> Any:
    """Best-effort conversion of what older checkpoints pickled (NumPy scalars and arrays, paths)."""
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and type(value) is not str:  # e.g. torch.__version__
        return str(value)
    return value


def convert_legacy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, trust_pickle: bool = False) -> Path:
    """Rewrite a checkpoint of an older release (pickled objects) in the current, safe format.

    Reading the old file unpickles it, **which runs any code the file was crafted to run**: do
    it only for files whose origin you trust. A file that the safe loader can read already
    (e.g. one without the ``format`` entry) is converted without ``trust_pickle``.

    Args:
        src: The old checkpoint.
        dst: Where to write the converted one (atomically).
        trust_pickle: Confirm that ``src`` may be unpickled.

    Raises:
        FileNotFoundError: no file at ``src``.
        CheckpointError: the file needs unpickling and ``trust_pickle`` is not set, or it is
            not a cnf-teach checkpoint even once unpickled.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise FileNotFoundError(f"checkpoint {src} not found")
    old = None
    with src.open("rb") as f:
        safe_candidate = f.read(4) == ZIP_MAGIC
    if safe_candidate:
        with contextlib.suppress(Exception):  # needs the unrestricted unpickler (or is no checkpoint)
            check_archive(src)
            old = torch.load(src, map_location="cpu", weights_only=True)
    if old is None:
        if not trust_pickle:
            raise CheckpointError(
                f"converting {src} means unpickling it, which can run arbitrary code; only for a file whose origin "
                "you trust, pass --trust-pickle (Python: trust_pickle=True)"
            )
        try:
            old = torch.load(src, map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - anything the unpickler raises
            raise CheckpointError(f"{src} cannot be read even unpickled ({first_line(err)})") from None
    if not isinstance(old, dict) or "task" not in old or "model" not in old:
        raise CheckpointError(f"{src} is not a cnf-teach checkpoint (no 'task' and 'model' entries)")
    new = {k: v for k, v in old.items() if k not in ("format", "version")}
    if isinstance(new.get("rng"), Mapping):
        new["rng"] = native_rng_to_plain(new["rng"])
    data = new.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("epoch_rng"), Mapping):
        new["data"] = {**data, "epoch_rng": native_rng_to_plain(data["epoch_rng"])}
    if isinstance(new.get("model"), Mapping):
        new["model"] = dict(new["model"])  # an OrderedDict is plain, but a dict reads more simply
    new = {k: _to_plain(v) for k, v in new.items()}
    save_checkpoint(new, dst)
    load_checkpoint(dst)  # the converted file reads back with the safe loader
    return dst
