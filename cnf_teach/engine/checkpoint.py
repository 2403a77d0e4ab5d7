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

Where the code is
-----------------
This module is the overview and the import path of all of it; each part is its own module:

- :mod:`.checkpoint_io`: :func:`save_checkpoint`, :func:`save_weights` and :func:`load_checkpoint`
  (the file: atomic writes, the archive and pickle checks before the safe loader);
- :mod:`.checkpoint_validation`: :class:`CheckpointError`, the format's constants and
  :func:`validate_checkpoint` (every entry checked before anything is restored);
- :mod:`.checkpoint_fit`: :func:`load_model_state`, :func:`rebuild_model`,
  :func:`check_optimizer_state` and :func:`check_same_structure` (states against the live model
  and optimizer);
- :mod:`.random_state`: :func:`rng_state` and :func:`set_rng_state`;
- :mod:`.legacy`: :func:`convert_legacy_checkpoint` (the older, pickled format).
"""

from __future__ import annotations

from .checkpoint_fit import check_optimizer_state, check_same_structure, load_model_state, rebuild_model
from .checkpoint_io import load_checkpoint, save_checkpoint, save_weights
from .checkpoint_validation import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    CheckpointError,
    check_config,
    validate_checkpoint,
)
from .checkpoint_validation import TRAINING_KEYS as TRAINING_KEYS  # public before the split, not in __all__
from .legacy import convert_legacy_checkpoint
from .random_state import rng_state, set_rng_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "check_config",
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
