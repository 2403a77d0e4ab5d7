"""Checkpoints that cannot run code: the file format, atomic saves, validated loading, random state.

The format (version 2)
----------------------
A checkpoint is one file written by ``torch.save`` (PyTorch's zip format) holding a dict of
tensors and plain data only: dicts, lists, tuples, strings, numbers, booleans and ``None``.
It is read back with ``torch.load(..., weights_only=True)``, PyTorch's restricted unpickler,
which builds nothing but those; a file that needs any other object (a crafted payload, or a
checkpoint of an older release that pickled NumPy objects) is refused before anything in it
is built, with a one-line message that says how to convert a file one trusts
(``cnf-teach convert-checkpoint OLD NEW --trust-pickle``).

Entries of every checkpoint:

- ``format``: ``"cnf-teach-checkpoint"``; ``version``: ``2``;
- ``task``: the application whose model it holds (``"sr"``, ``"seg"``);
- ``model``: the model's state dict, ``{name: tensor}``;
- ``extra`` (optional): the task's plain-data description of the model, from which it is
  rebuilt (super-resolution: ``{"kind", "sr_config"}``; vessels: ``{"model", "seg_config"}``);
- ``meta`` (optional): plain-data provenance (e.g. of released weights).

A file with only these is a *weights* file (:func:`save_weights`): it rebuilds a model but
cannot resume training. A *training* checkpoint (written by :class:`~cnf_teach.engine.Trainer`)
adds ``config`` (the :class:`~cnf_teach.engine.TrainConfig` as a dict), ``optimizer`` and
``scheduler`` (their state dicts), ``step``, ``rng`` (see :func:`rng_state`), ``data``
(``{"epoch", "batches", "epoch_rng"}``), ``metrics`` (``{"train": {...}, "eval": {...}}``)
and ``torch_version``.

Every problem with a file (missing entry, wrong type, a tensor that does not fit the model,
damage at any byte) is a :class:`CheckpointError`, a ``ValueError`` with a one-line message.

Length: about 700 lines, most of it validation: every entry of a checkpoint is checked before
anything is restored, so that a malformed or hostile file fails with one line. A later split
(format / validation / legacy conversion) would be natural.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "check_optimizer_state",
    "check_same_structure",
    "convert_legacy_checkpoint",
    "load_checkpoint",
    "load_model_state",
    "rebuild_model",
    "rng_state",
    "save_checkpoint",
    "save_weights",
    "set_rng_state",
    "validate_checkpoint",
]

#: File name of the rolling checkpoint inside ``TrainConfig.out_dir``.
CHECKPOINT_NAME = "last.pt"
#: Value of the ``format`` entry of every checkpoint.
CHECKPOINT_FORMAT = "cnf-teach-checkpoint"
#: Version of the format written here (1: the older, pickled format).
CHECKPOINT_VERSION = 2

#: Entries that only training checkpoints hold (all of them, or none).
TRAINING_KEYS = ("config", "optimizer", "scheduler", "step", "rng", "data")

_MAX_MESSAGE = 600
_ZIP_MAGIC = b"PK\x03\x04"
_CONVERT_HINT = "cnf-teach convert-checkpoint {path} NEW.pt"


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
        cnf_teach.engine.checkpoint.CheckpointError: ...last.pt is not a readable checkpoint (not a PyTorch file)
    """

    def __init__(self, message: str) -> None:
        text = " ".join(str(message).split())
        super().__init__(text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "...")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# --- random state ------------------------------------------------------------------------------
def rng_state(loader: Any = None) -> dict[str, Any]:
    """The state of every random-number generator, as tensors and plain numbers.

    Returns:
        ``{"torch": uint8[N], "numpy": {"bit_generator", "key": int64[624], "pos", "has_gauss",
        "cached_gaussian"}, "python": {"version", "state": int64[625], "gauss_next"}}``, plus
        ``"cuda"`` (a list of uint8 tensors, one per GPU) once CUDA is in use and ``"loader"``
        (uint8 tensor) when ``loader`` has its own ``torch.Generator``.
    """
    name, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - the legacy global state pipelines use
    version, words, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(name),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),  # [624]
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": torch.tensor(words, dtype=torch.int64), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        state["loader"] = gen.get_state()
    return state


def set_rng_state(state: Mapping[str, Any], loader: Any = None) -> None:
    """Restore what :func:`rng_state` returned (checked first by :func:`validate_checkpoint`)."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    key = npy["key"].numpy().astype(np.uint32)
    np.random.set_state((npy["bit_generator"], key, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))  # noqa: NPY002
    py = state["python"]
    random.setstate((py["version"], tuple(int(w) for w in py["state"].tolist()), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than when saved
            torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if "loader" in state and isinstance(gen, torch.Generator):
        gen.set_state(state["loader"])


def _native_rng_to_plain(state: Mapping[str, Any]) -> dict[str, Any]:
    """A random state as the older format pickled it (NumPy and Python tuples) -> :func:`rng_state`'s form."""
    out = dict(state)
    npy = state.get("numpy")
    if isinstance(npy, tuple):
        name, key, pos, has_gauss, cached = npy
        out["numpy"] = {
            "bit_generator": str(name),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    py = state.get("python")
    if isinstance(py, tuple):
        version, words, gauss_next = py
        out["python"] = {
            "version": int(version),
            "state": torch.tensor(words, dtype=torch.int64),
            "gauss_next": gauss_next,
        }
    if isinstance(state.get("cuda"), (tuple, list)):
        out["cuda"] = list(state["cuda"])
    return out


# --- plain data --------------------------------------------------------------------------------
#: Exact types (not subclasses: a NumPy float or a str subclass pickles as its own class) of plain data.
_PLAIN_SCALARS = (type(None), bool, int, float, str)
_PLAIN_MAPPINGS = (dict, OrderedDict)
_PLAIN_SEQUENCES = (list, tuple)
_PLAIN_TENSORS = (torch.Tensor, nn.Parameter)


def _check_plain(value: Any, where: str) -> None:
    """Raise unless ``value`` is tensors and plain data only (what ``weights_only`` loading builds)."""
    kind = type(value)
    if kind in _PLAIN_SCALARS or kind in _PLAIN_TENSORS:
        return
    if kind in _PLAIN_MAPPINGS:
        for k, v in value.items():
            if type(k) not in (str, int):
                raise CheckpointError(f"{where} has a key of type {type(k).__name__}; keys must be strings or integers")
            _check_plain(v, f"{where}.{k}")
        return
    if kind in _PLAIN_SEQUENCES:
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise CheckpointError(
        f"{where} is a {kind.__module__}.{kind.__qualname__}; a checkpoint holds only tensors, dicts, lists, "
        "strings, numbers, booleans and None (convert it: an array with torch.from_numpy, a NumPy number "
        "with .item(), a path with str)"
    )


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


# --- validation --------------------------------------------------------------------------------
def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
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
    if not (_is_int(npy.get("pos")) and 0 <= npy["pos"] <= 624):
        raise CheckpointError(f"{where}.numpy.pos must be an integer in [0, 624]")
    if npy.get("has_gauss") not in (0, 1) or isinstance(npy.get("has_gauss"), bool):
        raise CheckpointError(f"{where}.numpy.has_gauss must be 0 or 1")
    if not _is_number(npy.get("cached_gaussian")):
        raise CheckpointError(f"{where}.numpy.cached_gaussian must be a number")
    py = state["python"]
    if not isinstance(py, dict) or py.get("version") != 3 or isinstance(py.get("version"), bool):
        raise CheckpointError(f"{where}.python must be a dict with version 3")
    _check_words(py.get("state"), f"{where}.python.state", 625)
    if int(py["state"][-1]) > 624:
        raise CheckpointError(f"{where}.python.state ends with a position above 624")
    if not (py.get("gauss_next") is None or _is_number(py.get("gauss_next"))):
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
    if not (_is_int(ckpt["step"]) and ckpt["step"] >= 0):
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
        if not (_is_int(data.get(key)) and data[key] >= 0):
            raise CheckpointError(f"{source}: data.{key} must be an integer >= 0, got {data.get(key)!r}")
    if data.get("epoch_rng") is not None:
        _check_rng(data["epoch_rng"], f"{source}: data.epoch_rng")
    metrics = ckpt.get("metrics", {})
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{source}: 'metrics' must be a dict")
    for key in ("train", "eval"):
        part = metrics.get(key, {})
        if not isinstance(part, dict) or not all(isinstance(k, str) and _is_number(v) for k, v in part.items()):
            raise CheckpointError(f"{source}: metrics.{key} must map names to numbers")


def validate_checkpoint(ckpt: Any, source: str = "the checkpoint") -> dict[str, Any]:
    """Check the structure of a loaded checkpoint (see the module docstring); returns it.

    Raises:
        CheckpointError: an entry is missing or of the wrong kind (one line, naming it).
    """
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (it holds a {type(ckpt).__name__})")
    if "format" not in ckpt:
        if "task" in ckpt and "model" in ckpt:
            raise CheckpointError(
                f"{source} was written by an older cnf-teach (no 'format' entry); convert it once: "
                f"{_CONVERT_HINT.format(path=source)}"
            )
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (no 'format' entry; a bare PyTorch state dict?)")
    if ckpt["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{source} is not a cnf-teach checkpoint (format {ckpt['format']!r})")
    version = _need(ckpt, "version", source)
    if not _is_int(version) or version < 2:
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
        _check_plain(ckpt.get(key), f"{source}: {key}")
    if any(key in ckpt for key in TRAINING_KEYS):
        _check_training_state(ckpt, source)
    return ckpt


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
    _check_plain(ckpt, "checkpoint")
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
        f"origin, convert it once: {_CONVERT_HINT.format(path=path)} --trust-pickle"
    )


def _unsafe_globals(path: Path) -> list[str]:
    """The Python objects the file's pickle refers to beyond the allowed ones (read, never run)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - only used to word the message; the safe loader decides
        return []


def _check_archive(path: Path) -> None:
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
            f"{path} is not a readable checkpoint: damaged or truncated ({_first_line(err)})"
        ) from None
    if bad is not None:
        raise CheckpointError(f"{path} is not a readable checkpoint: damaged ({bad} fails its checksum)")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running any code from it, and check its structure.

    Returns:
        The checkpoint dict (see the module docstring): always ``format``, ``version``, ``task``
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
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"cannot read {path} ({_first_line(err)})") from None
    if not head:
        raise CheckpointError(f"{path} is not a readable checkpoint (the file is empty)")
    if head != _ZIP_MAGIC:
        if head[:1] == b"\x80":  # a pickle: a bare one, or PyTorch's legacy (pre-zip) format
            raise CheckpointError(_pickled_objects_message(path, []))
        raise CheckpointError(f"{path} is not a readable checkpoint (not a PyTorch file)")
    _check_archive(path)
    unsafe = _unsafe_globals(path)
    if unsafe:
        raise CheckpointError(_pickled_objects_message(path, unsafe))
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise CheckpointError(_pickled_objects_message(path, [])) from None
        raise CheckpointError(
            f"{path} is not a readable checkpoint: damaged or truncated ({_first_line(err)})"
        ) from None
    except Exception as err:  # noqa: BLE001 - any other failure of the safe loader means damage
        raise CheckpointError(
            f"{path} is not a readable checkpoint: damaged or truncated ({_first_line(err)})"
        ) from None
    return validate_checkpoint(ckpt, str(path))


def _describe(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _fit_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, Any]) -> list[str]:
    problems = []
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        problems.append(f"missing tensors {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_describe(unexpected)}")
    for name, ref in expected.items():
        got = state.get(name)
        if got is None:
            continue
        if not isinstance(got, torch.Tensor):
            problems.append(f"{name} is a {type(got).__name__}, not a tensor")
        elif tuple(got.shape) != tuple(ref.shape):
            problems.append(f"{name} has shape {list(got.shape)} where the model has {list(ref.shape)}")
        elif got.dtype != ref.dtype:
            problems.append(f"{name} has dtype {got.dtype} where the model has {ref.dtype}")
    return problems


def _raise_misfit(problems: list[str], source: str) -> None:
    if problems:
        more = f"; and {len(problems) - 2} more problems" if len(problems) > 2 else ""
        raise CheckpointError(
            f"{source} does not fit the model: {'; '.join(problems[:2])}{more} (a checkpoint of another "
            "model or configuration?)"
        )


def load_model_state(model: nn.Module, state: Any, source: str = "the checkpoint") -> nn.Module:
    """``model.load_state_dict(state)`` after checking names, shapes and dtypes; returns ``model``.

    Raises:
        CheckpointError: a tensor is missing, unexpected, or of another shape or dtype (one line,
            naming the first ones).
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the model entry is a {type(state).__name__}, not a dict of tensors")
    _raise_misfit(_fit_problems(model.state_dict(), state), source)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source} does not fit the model ({_first_line(err)})") from None
    return model


def rebuild_model(build: Callable[[], nn.Module], state: Any, source: str = "the checkpoint") -> nn.Module:
    """Build a model from a checkpoint's config with ``build()`` and load its ``state`` into it.

    The model is first built on PyTorch's ``meta`` device (no memory) and compared with ``state``,
    so that a config asking for a model far larger than the file is refused before it is
    allocated. Any failure of ``build`` means the stored config does not describe a model.

    Raises:
        CheckpointError: the config builds no model, or the tensors do not fit it (one line).
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: the model entry is a {type(state).__name__}, not a dict of tensors")
    try:
        with torch.device("meta"):
            probe = build()
    except Exception:  # noqa: BLE001 - retried below on the CPU, where the real error is reported
        probe = None
    if probe is not None:
        _raise_misfit(_fit_problems(probe.state_dict(), state), source)
    try:
        model = build()
    except Exception as err:  # noqa: BLE001 - a stored config may fail in any way
        raise CheckpointError(f"{source}: its model config does not build a model ({_first_line(err)})") from None
    return load_model_state(model, state, source)


def check_same_structure(value: Any, template: Any, where: str) -> None:
    """Raise unless ``value`` has the structure of ``template`` (a freshly made state dict).

    Dicts need the same keys, lists and tuples the same length, tensors the same shape and
    dtype; numbers match numbers, and strings, booleans and ``None`` their own kind.

    Raises:
        CheckpointError: the first difference, named by its path.
    """
    if isinstance(template, dict):
        if not isinstance(value, dict):
            raise CheckpointError(f"{where} must be a dict, got {type(value).__name__}")
        if set(value) != set(template):
            missing, unexpected = (
                sorted(map(str, set(template) - set(value))),
                sorted(map(str, set(value) - set(template))),
            )
            raise CheckpointError(
                f"{where} has other entries than expected (missing {missing}, unexpected {unexpected})"
            )
        for key, sub in template.items():
            check_same_structure(value[key], sub, f"{where}.{key}")
    elif isinstance(template, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(template):
            raise CheckpointError(f"{where} must be a list of {len(template)} items")
        for i, (v, t) in enumerate(zip(value, template, strict=True)):
            check_same_structure(v, t, f"{where}[{i}]")
    elif isinstance(template, torch.Tensor):
        if not isinstance(value, torch.Tensor) or value.shape != template.shape or value.dtype != template.dtype:
            raise CheckpointError(
                f"{where} must be a {template.dtype} tensor of shape {list(template.shape)}, got "
                + (f"{value.dtype} {list(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__)
            )
    elif isinstance(template, bool) or template is None or isinstance(template, str):
        if type(value) is not type(template):
            raise CheckpointError(f"{where} must be {type(template).__name__}, got {type(value).__name__}")
    elif _is_number(template) and not _is_number(value):
        raise CheckpointError(f"{where} must be a number, got {type(value).__name__}")


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, source: str = "the checkpoint") -> None:
    """Raise unless ``state`` is a state dict that ``optimizer`` can load and step with.

    Checks the parameter groups against the optimizer's own, and every per-parameter tensor
    (Adam's moments) against its parameter's shape and dtype.

    Raises:
        CheckpointError: the first problem, in one line.
    """
    where = f"{source}: optimizer"
    template = optimizer.state_dict()
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise CheckpointError(f"{where} must be a dict with 'state' and 'param_groups'")
    groups = state["param_groups"]
    check_same_structure(groups, template["param_groups"], f"{where}.param_groups")
    for i, (group, ref) in enumerate(zip(groups, template["param_groups"], strict=True)):
        if list(group["params"]) != list(ref["params"]):
            raise CheckpointError(f"{where}.param_groups[{i}] lists other parameters than this model's")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    amsgrad = any(group.get("amsgrad") for group in optimizer.param_groups)
    required = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())
    per_param = state["state"]
    if not isinstance(per_param, dict):
        raise CheckpointError(f"{where}.state must be a dict")
    for index, entry in per_param.items():
        if not _is_int(index) or not 0 <= index < len(params):
            raise CheckpointError(f"{where}.state has an entry {index!r} for no parameter of this model")
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where}.state[{index}] must be a dict")
        if isinstance(optimizer, torch.optim.Adam) and set(entry) != required:
            raise CheckpointError(f"{where}.state[{index}] must hold {sorted(required)}, got {sorted(map(str, entry))}")
        param = params[index]
        for key, value in entry.items():
            if key == "step":
                ok = _is_number(value) or (
                    isinstance(value, torch.Tensor) and value.dim() == 0 and value.is_floating_point()
                )
                if not ok or float(value) < 0:
                    raise CheckpointError(f"{where}.state[{index}].step must be a number >= 0")
            elif not isinstance(value, torch.Tensor) or value.shape != param.shape or value.dtype != param.dtype:
                raise CheckpointError(
                    f"{where}.state[{index}].{key} must be a {param.dtype} tensor of shape {list(param.shape)}"
                )


# --- converting the older format ---------------------------------------------------------------
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
        safe_candidate = f.read(4) == _ZIP_MAGIC
    if safe_candidate:
        with contextlib.suppress(Exception):  # needs the unrestricted unpickler (or is no checkpoint)
            _check_archive(src)
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
            raise CheckpointError(f"{src} cannot be read even unpickled ({_first_line(err)})") from None
    if not isinstance(old, dict) or "task" not in old or "model" not in old:
        raise CheckpointError(f"{src} is not a cnf-teach checkpoint (no 'task' and 'model' entries)")
    new = {k: v for k, v in old.items() if k not in ("format", "version")}
    if isinstance(new.get("rng"), Mapping):
        new["rng"] = _native_rng_to_plain(new["rng"])
    data = new.get("data")
    if isinstance(data, Mapping) and isinstance(data.get("epoch_rng"), Mapping):
        new["data"] = {**data, "epoch_rng": _native_rng_to_plain(data["epoch_rng"])}
    if isinstance(new.get("model"), Mapping):
        new["model"] = dict(new["model"])  # an OrderedDict is plain, but a dict reads more simply
    new = {k: _to_plain(v) for k, v in new.items()}
    save_checkpoint(new, dst)
    load_checkpoint(dst)  # the converted file reads back with the safe loader
    return dst
