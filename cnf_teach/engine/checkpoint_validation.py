"""What a loaded checkpoint must hold: the format's constants, :class:`CheckpointError`, the checks.

Every entry of a checkpoint is checked before anything is restored, so that a malformed or
hostile file fails with one line: :func:`validate_checkpoint` checks the structure of the whole
dict (the entries listed in :mod:`cnf_teach.engine.checkpoint`, random states included) and
``check_plain`` that an entry is tensors and plain data only. These checks need nothing but the
dict; whether its tensors fit a particular model or optimizer is :mod:`.checkpoint_fit`'s job.
Its own file, and the lowest of the checkpoint modules: the others import
:class:`CheckpointError` from here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "TRAINING_KEYS",
    "CONVERT_HINT",
    "CheckpointError",
    "check_config",
    "check_plain",
    "first_line",
    "is_int",
    "is_number",
    "validate_checkpoint",
]

#: Value of the ``format`` entry of every checkpoint.
CHECKPOINT_FORMAT = "cnf-teach-checkpoint"
#: Version of the format that this release writes (1: the older, pickled format).
CHECKPOINT_VERSION = 2

#: Entries that only training checkpoints hold (all of them, or none).
TRAINING_KEYS = ("config", "optimizer", "scheduler", "step", "rng", "data")

_MAX_MESSAGE = 600
#: How the one-line errors name the conversion of an older checkpoint.
CONVERT_HINT = "cnf-teach convert-checkpoint {path} NEW.pt"


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message is always one line.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from cnf_teach.engine import CheckpointError, load_checkpoint
        >>> issubclass(CheckpointError, ValueError), str(CheckpointError("two\\n   lines"))
        (True, 'two lines')
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "last.pt"
        ...     _ = path.write_bytes(b"not a checkpoint")
        ...     load_checkpoint(path)
        Traceback (most recent call last):
        ...
        cnf_teach.engine.checkpoint_validation.CheckpointError: ...last.pt is not a readable checkpoint
        (not a PyTorch file)
    """

    def __init__(self, message: str) -> None:
        text = " ".join(str(message).split())
        super().__init__(text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "...")


def first_line(err: BaseException) -> str:
    """``"TypeName: first line of the message"``: an error of a library, shortened for a one-line message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# --- plain data --------------------------------------------------------------------------------
#: Exact types (not subclasses: a NumPy float or a str subclass pickles as its own class) of plain data.
_PLAIN_SCALARS = (type(None), bool, int, float, str)
_PLAIN_MAPPINGS = (dict, OrderedDict)
_PLAIN_SEQUENCES = (list, tuple)
_PLAIN_TENSORS = (torch.Tensor, nn.Parameter)


def check_plain(value: Any, where: str) -> None:
    """Raise unless ``value`` is tensors and plain data only (what ``weights_only`` loading builds)."""
    kind = type(value)
    if kind in _PLAIN_SCALARS or kind in _PLAIN_TENSORS:
        return
    if kind in _PLAIN_MAPPINGS:
        for k, v in value.items():
            if type(k) not in (str, int):
                raise CheckpointError(f"{where} has a key of type {type(k).__name__}; keys must be strings or integers")
            check_plain(v, f"{where}.{k}")
        return
    if kind in _PLAIN_SEQUENCES:
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}; a checkpoint holds only tensors, dicts, lists, "
        "strings, numbers, booleans and None (convert it: an array with torch.from_numpy, a NumPy number "
        "with .item(), a path with str)"
    )


# --- validation --------------------------------------------------------------------------------
def is_int(x: Any) -> bool:
    """Whether ``x`` is an ``int`` (not a ``bool``)."""
    return isinstance(x, int) and not isinstance(x, bool)


def is_number(x: Any) -> bool:
    """Whether ``x`` is an ``int`` or a ``float`` (not a ``bool``)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _need(ckpt: Mapping[str, Any], key: str, source: str) -> Any:
    if key not in ckpt:
        raise CheckpointError(f"{source} has no {key!r} entry; it is damaged or was not written by cnf-teach")
    return ckpt[key]


def _check_byte_state(value: Any, where: str, size: int | None = None) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 1:
        raise CheckpointError(f"{where} must be a 1-d uint8 tensor (a generator state)")
    if size is not None and value.numel() != size:
        raise CheckpointError(f"{where} holds {value.numel()} bytes; a CPU generator state has {size}")


def _check_words(value: Any, where: str, n: int) -> None:
    if not isinstance(value, torch.Tensor) or value.dtype != torch.int64 or tuple(value.shape) != (n,):
        raise CheckpointError(f"{where} must be an int64 tensor of shape [{n}]")
    if bool((value < 0).any()) or bool((value >= 2**32).any()):
        raise CheckpointError(f"{where} holds values outside [0, 2^32)")


def _check_rng(state: Any, where: str) -> None:
    """Raise unless ``state`` is what :func:`rng_state` returns."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{where} must be a dict of generator states")
    cpu_size = torch.get_rng_state().numel()
    for key in ("torch", "numpy", "python"):
        if key not in state:
            raise CheckpointError(f"{where} has no {key!r} state")
    _check_byte_state(state["torch"], f"{where}.torch", cpu_size)
    npy = state["numpy"]
    if not isinstance(npy, dict) or npy.get("bit_generator") != "MT19937":
        raise CheckpointError(f"{where}.numpy must be a dict with bit_generator 'MT19937'")
    _check_words(npy.get("key"), f"{where}.numpy.key", 624)
    if not (is_int(npy.get("pos")) and 0 <= npy["pos"] <= 624):
        raise CheckpointError(f"{where}.numpy.pos must be an integer in [0, 624]")
    if npy.get("has_gauss") not in (0, 1) or isinstance(npy.get("has_gauss"), bool):
        raise CheckpointError(f"{where}.numpy.has_gauss must be 0 or 1")
    if not is_number(npy.get("cached_gaussian")):
        raise CheckpointError(f"{where}.numpy.cached_gaussian must be a number")
    py = state["python"]
    if not isinstance(py, dict) or py.get("version") != 3 or isinstance(py.get("version"), bool):
        raise CheckpointError(f"{where}.python must be a dict with version 3")
    _check_words(py.get("state"), f"{where}.python.state", 625)
    if int(py["state"][-1]) > 624:
        raise CheckpointError(f"{where}.python.state ends with a position above 624")
    if not (py.get("gauss_next") is None or is_number(py.get("gauss_next"))):
        raise CheckpointError(f"{where}.python.gauss_next must be a number or None")
    if "cuda" in state:
        if not isinstance(state["cuda"], (list, tuple)):
            raise CheckpointError(f"{where}.cuda must be a list of generator states")
        for i, s in enumerate(state["cuda"]):
            _check_byte_state(s, f"{where}.cuda[{i}]")
    if "loader" in state:
        _check_byte_state(state["loader"], f"{where}.loader", cpu_size)


def _check_training_state(ckpt: Mapping[str, Any], source: str) -> None:
    for key in TRAINING_KEYS:
        _need(ckpt, key, source)
    if not (is_int(ckpt["step"]) and ckpt["step"] >= 0):
        raise CheckpointError(f"{source}: 'step' must be an integer >= 0, got {ckpt['step']!r}")
    for key in ("config", "scheduler"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{source}: {key!r} must be a dict, got {type(ckpt[key]).__name__}")
    opt = ckpt["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("state"), dict) and isinstance(opt.get("param_groups"), list)):
        raise CheckpointError(f"{source}: 'optimizer' must be an optimizer state dict ('state' and 'param_groups')")
    _check_rng(ckpt["rng"], f"{source}: rng")
    data = ckpt["data"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{source}: 'data' must be a dict (epoch, batches, epoch_rng)")
    for key in ("epoch", "batches"):
        if not (is_int(data.get(key)) and data[key] >= 0):
            raise CheckpointError(f"{source}: data.{key} must be an integer >= 0, got {data.get(key)!r}")
    if data.get("epoch_rng") is not None:
        _check_rng(data["epoch_rng"], f"{source}: data.epoch_rng")
    metrics = ckpt.get("metrics", {})
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{source}: 'metrics' must be a dict")
    for key in ("train", "eval"):
        part = metrics.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(k, str) and is_number(v) for k, v in part.items()):
            raise CheckpointError(f"{source}: metrics.{key} must map names to numbers")


def validate_checkpoint(ckpt: Any, source: str = "the checkpoint") -> dict[str, Any]:
    """Check the structure of a loaded checkpoint (see :mod:`cnf_teach.engine.checkpoint`); returns it.

    Raises:
        CheckpointError: an entry is missing or of the wrong kind (one line, naming it).
    """
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (it holds a {type(ckpt).__name__})")
    if "format" not in ckpt:
        if "task" in ckpt and "model" in ckpt:
            raise CheckpointError(
                f"{source} was written by an older cnf-teach (no 'format' entry); convert it once: "
                f"{CONVERT_HINT.format(path=source)}"
            )
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (no 'format' entry; a bare PyTorch state dict?)")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (format {ckpt['format']!r})")
    version = _need(ckpt, "version", source)
    if not is_int(version) or version < 2:
        raise CheckpointError(f"{source} has an unknown format version {version!r}; this release reads version 2")
    if version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{source} was written by a newer cnf-teach (format version {version}; this one reads up to "
            f"{CHECKPOINT_VERSION}); upgrade cnf-teach to read it"
        )
    task = _need(ckpt, "task", source)
    if not isinstance(task, str) or not task:
        raise CheckpointError(f"{source}: 'task' must be a non-empty string, got {task!r}")
    model = _need(ckpt, "model", source)
    if not isinstance(model, dict):
        raise CheckpointError(f"{source}: 'model' must be a dict of tensors, got {type(model).__name__}")
    for name, tensor in model.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{source}: model entry {name!r} is a {type(tensor).__name__}, not a tensor")
    for key in ("extra", "meta"):
        check_plain(ckpt.get(key), f"{source}: {key}")
    if any(key in ckpt for key in TRAINING_KEYS):
        _check_training_state(ckpt, source)
    return ckpt


def check_config(
    config: Mapping[str, Any], limits: Mapping[str, tuple[float, float]], source: str, entry: str = "config"
) -> None:
    """Raise unless a stored model config is plain values within ``limits``, before anything is built.

    A config comes from a checkpoint a user passed, so it is checked like the rest of the file:
    every value is a string, number, boolean, ``None`` or a list of those (never a tensor), and
    every field in ``limits`` is a finite number in ``[low, high]`` (each element, for a list). The
    bounds keep a crafted file from asking for a model whose construction never ends (a billion
    blocks) before the shapes of its tensors can even be compared with the file's.

    Args:
        config: The config dict of the checkpoint's ``extra`` entry.
        limits: ``{field: (low, high)}`` for the sizes and counts of the model.
        source: The checkpoint, for the messages.
        entry: The entry's name, for the messages.

    Raises:
        CheckpointError: (one line) a value that is not plain, or a size outside its bounds.
    """
    for key, value in config.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        if not isinstance(key, str) or not all(type(v) in (type(None), bool, int, float, str) for v in items):
            raise CheckpointError(
                f"{source}: {entry}.{key} is not a plain value (a {type(value).__name__}); "
                "pass a checkpoint written by this package"
            )
        if key not in limits or value is None:
            continue
        low, high = limits[key]
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not low <= v <= high:
                raise CheckpointError(
                    f"{source}: {entry}.{key} = {value!r} is outside {low:g}..{high:g}; "
                    "the file is damaged or crafted, pass a checkpoint written by this package"
                )
