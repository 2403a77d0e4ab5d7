"""Every random generator's state as tensors and plain numbers, for resuming a run exactly.

:func:`rng_state` captures PyTorch's (CPU, and every GPU once CUDA is in use), NumPy's legacy
global and Python's generators, plus a data loader's own ``torch.Generator``;
:func:`set_rng_state` restores them. The state is stored in the ``rng`` entry of a training
checkpoint (see :mod:`cnf_teach.engine.checkpoint`), so it is kept to what the safe loader reads:
tensors, dicts, strings and numbers, never the tuples NumPy and Python hand out. Its own file
because it touches no file and checks nothing: :mod:`.checkpoint_validation` checks a stored
state before it is restored, and :mod:`.legacy` uses :func:`native_rng_to_plain` to convert the
tuples older releases pickled.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["check_rng_state", "native_rng_to_plain", "rng_state", "set_rng_state"]


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


def check_rng_state(state: Mapping[str, Any], source: str = "the checkpoint") -> None:
    """Raise unless every generator's state in ``state`` can be restored (tried on throwaway generators).

    A state of the right shape can still be refused by its generator (an all-zero Mersenne
    Twister, for one); this finds out before anything of the run is restored.

    Raises:
        ValueError: (one line) the first generator whose state is refused.
    """
    tries = {
        "torch": lambda: torch.Generator().set_state(state["torch"]),
        "numpy": lambda: np.random.RandomState().set_state(  # noqa: NPY002
            (
                state["numpy"]["bit_generator"],
                state["numpy"]["key"].numpy().astype(np.uint32),
                state["numpy"]["pos"],
                state["numpy"]["has_gauss"],
                state["numpy"]["cached_gaussian"],
            )
        ),
        "python": lambda: random.Random().setstate(
            (
                state["python"]["version"],
                tuple(int(w) for w in state["python"]["state"].tolist()),
                state["python"]["gauss_next"],
            )
        ),
    }
    if "loader" in state:
        tries["loader"] = lambda: torch.Generator().set_state(state["loader"])
    for name, restore in tries.items():
        try:
            restore()
        except Exception as err:  # noqa: BLE001 - any refusal of the generator means a bad state
            text = str(err).strip().splitlines()
            raise ValueError(
                f"{source}: its rng.{name} state cannot be restored ({text[0] if text else type(err).__name__}); "
                "the file is damaged, use an earlier checkpoint"
            ) from None


def native_rng_to_plain(state: Mapping[str, Any]) -> dict[str, Any]:
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
