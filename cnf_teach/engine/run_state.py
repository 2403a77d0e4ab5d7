"""What a checkpoint of a run holds, and resuming it exactly: the trainer's state and data position.

A checkpoint holds the model, optimizer, scheduler, every random-number generator's state, the
data position (epoch, batches used in it, and the random state when the epoch began), the step
and the ``task``. Resuming re-creates the data iterator of the interrupted epoch with the random
state it had when that epoch began, skips the batches already used, then restores the random
state of the checkpoint, so that $N$ steps in one go equal $k$ steps plus a resume to $N$, bit
for bit on the CPU. This is exact when the pipeline draws its randomness from the global
generators or from the ``DataLoader``'s own ``generator`` (both are saved), as
:func:`~cnf_teach.engine.make_loader` does.

:class:`TrainerState` is the part of :class:`~cnf_teach.engine.Trainer` that does this; every
entry of a checkpoint is checked against the model and optimizer before anything is restored
(:mod:`cnf_teach.engine.checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_optimizer_state,
    check_same_structure,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
    validate_checkpoint,
)
from .checkpoint_fit import check_finite
from .config import TrainConfig
from .evaluation import EvalFn, ShardedEval
from .random_state import check_rng_state
from .step import LossFn

__all__ = ["TrainerState"]

_T = TypeVar("_T", bound="TrainerState")  # the trainer class itself


class TrainerState:
    """Checkpoints of :class:`~cnf_teach.engine.Trainer`: saving, checked loading, exact resume, data position.

    A part of the trainer (it is one of its base classes), not used alone.

    Examples:
        >>> import tempfile
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine import TrainConfig, Trainer
        >>> batches = [torch.ones(2, 2), torch.zeros(2, 2)]
        >>> loss_fn = lambda m, b: (m(b).pow(2).mean(), {})
        >>> with tempfile.TemporaryDirectory() as out:
        ...     config = TrainConfig(steps=3, device="cpu", progress=False, out_dir=out)
        ...     trainer = Trainer(nn.Linear(2, 1), loss_fn, batches, config)
        ...     _ = trainer.fit()
        ...     resumed = Trainer.resume(trainer.checkpoint_path, nn.Linear(2, 1), loss_fn, batches, config)
        >>> resumed.step, resumed.epoch, resumed.batches_in_epoch  # the third batch was the first of epoch 1
        (3, 1, 1)
    """

    config: TrainConfig
    task: str
    extra_state: Any
    model: nn.Module
    optimizer: torch.optim.Adam
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train_data: Iterable[Any]
    rank: int
    step: int
    epoch: int
    batches_in_epoch: int
    epoch_rng: dict[str, Any] | None
    history: list[dict[str, float]]
    last_eval: dict[str, float]
    _iterator: Iterator[Any] | None
    _diverged: torch.Tensor

    @property
    def checkpoint_path(self) -> Path | None:
        """``out_dir/last.pt`` or ``None`` without an output folder."""
        return Path(self.config.out_dir) / CHECKPOINT_NAME if self.config.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :func:`~cnf_teach.engine.checkpoint.load_checkpoint`)."""
        return {
            "task": self.task,
            "config": asdict(self.config),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "rng": rng_state(self.train_data),
            "data": {"epoch": self.epoch, "batches": self.batches_in_epoch, "epoch_rng": self.epoch_rng},
            "extra": self.extra_state,
            "metrics": {"train": self.history[-1] if self.history else {}, "eval": self.last_eval},
            "torch_version": str(torch.__version__),
        }

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only) atomically; returns its path."""
        path = path if path is not None else self.checkpoint_path
        if path is None or self.rank != 0:
            return None
        return save_checkpoint(self.state_dict(), path)

    def load(self: _T, path_or_state: str | os.PathLike | Mapping[str, Any]) -> _T:
        """Restore model, optimizer, scheduler, step, data position and random state.

        Everything is checked against this trainer's model and optimizer before anything is
        restored, so a bad checkpoint leaves the trainer as it was.

        Raises:
            ValueError: (one line) another task's checkpoint, a weights-only file, or entries
                that do not fit this model, optimizer or data.
        """
        if isinstance(path_or_state, Mapping):
            source = "the checkpoint"
            ckpt = validate_checkpoint(dict(path_or_state), source)
        else:
            source = str(path_or_state)
            ckpt = load_checkpoint(path_or_state)
        return self._restore(ckpt, source)

    def _restore(self: _T, ckpt: Mapping[str, Any], source: str) -> _T:
        """:meth:`load` of a checkpoint already read and checked by :func:`validate_checkpoint`."""
        self._check_resumable(ckpt, source)
        load_model_state(self.model, ckpt["model"], source)
        try:
            self.optimizer.load_state_dict(self._own_optimizer_flags(ckpt["optimizer"]))
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as err:
            raise CheckpointError(f"{source}: cannot restore the optimizer ({err})") from None
        self.step = ckpt["step"]
        self._diverged.zero_()
        data = ckpt["data"]
        self.epoch = data["epoch"]
        self.batches_in_epoch = data["batches"]
        self.epoch_rng = data.get("epoch_rng")
        metrics = ckpt.get("metrics", {})
        self.history = [dict(metrics["train"])] if metrics.get("train") else []
        self.last_eval = dict(metrics.get("eval", {}))
        self._iterator = None
        if self.epoch_rng is not None:
            # Replay the interrupted epoch's order up to where it stopped ...
            set_rng_state(self.epoch_rng, self.train_data)
            self._iterator = self._new_epoch_iterator(record=False)
            for _ in range(self.batches_in_epoch):
                next(self._iterator)
        # ... then continue from the checkpoint's exact random state.
        set_rng_state(ckpt["rng"], self.train_data)
        return self

    def _own_optimizer_flags(self, state: Any) -> Any:
        """``state`` with this optimizer's implementation flags (fused, foreach), copied not changed.

        Which Adam implementation ran (fused or not) depends on the device, not on the run, so a
        checkpoint written on one device resumes on another.
        """
        if not isinstance(state, Mapping) or not isinstance(state.get("param_groups"), list):
            return state  # malformed: check_optimizer_state names the problem
        own = self.optimizer.param_groups[0]
        groups = [
            {**g, **{k: own[k] for k in ("fused", "foreach") if k in own}} if isinstance(g, Mapping) else g
            for g in state["param_groups"]
        ]
        return {**state, "param_groups": groups}

    def _check_resumable(self, ckpt: Mapping[str, Any], source: str) -> None:
        """Raise unless ``ckpt`` is a training checkpoint of this task that fits this trainer."""
        if ckpt["task"] != self.task:
            raise CheckpointError(
                f"{source} was written by a {ckpt['task']!r} run, not {self.task!r}; use the matching command"
            )
        if "optimizer" not in ckpt:
            raise CheckpointError(
                f"{source} holds model weights only (no optimizer or random state): it rebuilds the model "
                "but cannot resume training"
            )
        check_optimizer_state(self.optimizer, self._own_optimizer_flags(ckpt["optimizer"]), source)
        check_finite(ckpt["optimizer"], f"{source}: optimizer")
        try:
            check_rng_state(ckpt["rng"], source)
            if ckpt["data"].get("epoch_rng") is not None:
                check_rng_state(ckpt["data"]["epoch_rng"], f"{source}: data.epoch_rng")
        except ValueError as err:
            raise CheckpointError(str(err)) from None
        check_same_structure(ckpt["scheduler"], self.scheduler.state_dict(), f"{source}: scheduler")
        batches = ckpt["data"]["batches"]
        if ckpt["data"].get("epoch_rng") is not None and hasattr(self.train_data, "__len__"):
            if batches > len(self.train_data):
                raise CheckpointError(
                    f"{source} stopped after batch {batches} of an epoch, but this data has {len(self.train_data)} "
                    "batches per epoch; resume with the data and batch size it was trained with"
                )

    @classmethod
    def resume(
        cls: type[_T],
        path: str | os.PathLike,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any],
        config: TrainConfig | None = None,
        eval_fn: EvalFn | ShardedEval | None = None,
        task: str = "sr",
        extra_state: Any = None,
    ) -> _T:
        """A trainer restored from ``path``; ``config`` (e.g. with more ``steps``) overrides the stored one.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: (one line) the file is not a checkpoint this trainer can resume.
        """
        ckpt = load_checkpoint(path)
        if config is None:
            try:
                config = TrainConfig.from_dict(ckpt.get("config") or {})
            except (TypeError, ValueError) as err:
                raise CheckpointError(f"{path}: its training config is invalid ({err})") from None
        extra = extra_state if extra_state is not None else ckpt.get("extra")
        return cls(model, loss_fn, train_data, config, eval_fn, task, extra)._restore(ckpt, str(path))  # type: ignore[call-arg]

    def _new_epoch_iterator(self, record: bool = True) -> Iterator[Any]:
        """An iterator over one epoch; ``record`` notes the random state it starts from (for resume)."""
        if record:
            self.epoch_rng = rng_state(self.train_data)
            self.batches_in_epoch = 0
        sampler = getattr(self.train_data, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        return iter(self.train_data)

    def _next_batch(self) -> Any:
        """The next batch, epoch after epoch, counting the data position a checkpoint stores."""
        if self._iterator is None:
            self._iterator = self._new_epoch_iterator()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch += 1
            self._iterator = self._new_epoch_iterator()
            try:
                batch = next(self._iterator)
            except StopIteration:
                raise ValueError("the training data yielded no batch; check the dataset and batch size") from None
        self.batches_in_epoch += 1
        return batch
