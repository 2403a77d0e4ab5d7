"""One training engine for every model of the package (super-resolution and vessel segmentation).

A model is trained by minimising a loss that the task supplies,
``loss_fn(model, batch) -> (loss, metrics)``, typically the negative log-likelihood
$-\\log p(y \\mid x)$ in bits per dimension. The engine owns everything else:

- Adam with a learning-rate schedule (constant, cosine or linear decay, with linear warm-up);
- gradient clipping by global norm;
- progress with the live loss and bits/dim: a bar on a terminal, a log line every 30 s in a log
  file or batch job (:mod:`cnf_teach.progress`);
- periodic evaluation: ``eval_fn(model) -> dict``, or a :class:`~.evaluation.ShardedEval` that
  every DDP rank runs on its share of the data, combined with one all-reduce;
- checkpoints written atomically (to a temporary file, then renamed) holding the model,
  optimizer, scheduler, every random-number generator's state, the data position, the step
  and the ``task``, so that training resumes *exactly*: $N$ steps in one go equal $k$ steps
  plus a resume to $N$, bit for bit on the CPU;
- NaN/inf detection that stops with a clear message and keeps the last good checkpoint. The
  step does not wait for the device: a non-finite loss or gradient norm raises a flag on the
  device, and Adam (fused, where the device has it) skips its update while the flag is up, as
  ``torch.amp.GradScaler`` does with ``found_inf``. The host reads the flag only when it logs,
  evaluates or saves, and then stops with :class:`TrainingDiverged`: no non-finite step is
  ever applied, and the trainer's step, model and optimizer are those of the last good step;
- ``device="auto"`` (CUDA, then MPS, then CPU), bf16 mixed precision and ``torch.compile``
  on GPUs, and several GPUs with PyTorch DDP when launched by ``torchrun``.

Exact resume and the data pipeline: the engine re-creates the data iterator of the
interrupted epoch with the random state it had when that epoch began, skips the batches
already used, then restores the random state of the checkpoint. This is exact when the
pipeline draws its randomness from the global generators or from the ``DataLoader``'s own
``generator`` (both are saved), as :func:`make_loader` does.

References:
    Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Table 5 and
    §5.1 (Adam, learning rate $10^{-4}$, batch 64, 200k iterations for super-resolution).

This module is longer than the package's other engine modules: :class:`Trainer` is one unit
(set-up, step, evaluation, state and the loop), easier to read whole than split.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..flows.actnorm import data_init
from ..progress import Progress
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
from .config import TrainConfig, TrainingDiverged, lr_factor
from .devices import resolve_device, to_device
from .distributed import distributed_info, init_distributed
from .evaluation import EvalFn, Shard, ShardedEval, all_reduce_totals, means

__all__ = ["Trainer"]

log = logging.getLogger(__name__)

#: ``loss_fn(model, batch) -> (loss, metrics)``: a scalar tensor to minimise and a dict of
#: floats (or 0-d tensors) to report, e.g. ``{"bpd": 3.2}``.
LossFn = Callable[[nn.Module, Any], "tuple[Tensor, Mapping[str, float | Tensor]]"]


def _make_adam(params: list[nn.Parameter], config: TrainConfig) -> tuple[torch.optim.Adam, bool]:
    """Adam, fused when the parameters' device supports it; returns ``(optimizer, fused)``.

    Only the fused implementation can skip an update on the device (its ``found_inf``), which
    lets :meth:`Trainer.train_step` run without a host synchronisation.
    """
    try:
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True), True
    except (RuntimeError, ValueError):  # a device without fused Adam: the host checks every step
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas), False


def _channels_last(batch: Any) -> Any:
    """Image tensors (4-D, floating point) of a (nested) batch in channels-last memory format."""
    if isinstance(batch, Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, Mapping):
        return {k: _channels_last(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_channels_last(v) for v in batch)
    return batch


class _LossModule(nn.Module):
    """Wraps ``loss_fn(model, batch)`` as a module, so DDP and ``torch.compile`` see one forward."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> tuple[Tensor, Mapping[str, Any]]:
        return self.loss_fn(self.model, batch)


class Trainer:
    """Trains ``model`` by minimising ``loss_fn`` with Adam; see the module docstring.

    Args:
        model: The model (moved to the configured device).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``.
        train_data: Iterable of batches (a ``DataLoader``); cycled, epoch after epoch.
        config: :class:`TrainConfig`.
        eval_fn: Run every ``eval_every`` steps and at the end, with the bare model in eval mode:
            ``eval_fn(model) -> dict`` (under DDP on rank 0 alone, the others waiting), or a
            :class:`~.evaluation.ShardedEval` (under DDP every rank scores its share).
        task: ``"sr"`` or ``"seg"``, stored in checkpoints so that each CLI recognises its own.
        extra_state: Plain data (dicts, lists, strings, numbers, tensors) stored in checkpoints as
            ``extra``, e.g. the model's config; see :mod:`cnf_teach.engine.checkpoint`.

    Examples:
        >>> import tempfile
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine import TrainConfig, Trainer
        >>> def loss_fn(model, batch):  # (loss to minimise, metrics to report)
        ...     loss = model(batch).pow(2).mean()
        ...     return loss, {"mse": loss.detach()}
        >>> _ = torch.manual_seed(0)
        >>> batches = [torch.randn(2, 4), torch.randn(2, 4)]  # any iterable of batches, e.g. a DataLoader
        >>> with tempfile.TemporaryDirectory() as out_dir:
        ...     config = TrainConfig(steps=2, device="cpu", progress=False, out_dir=out_dir)
        ...     trainer = Trainer(nn.Linear(4, 1), loss_fn, batches, config)
        ...     metrics = trainer.fit()  # 2 steps, then writes out_dir/last.pt
        ...     more = TrainConfig(steps=4, device="cpu", progress=False, out_dir=out_dir)
        ...     resumed = Trainer.resume(trainer.checkpoint_path, nn.Linear(4, 1), loss_fn, batches, more)
        ...     print(sorted(metrics), resumed.step, resumed.fit()["step"])
        ['grad_norm', 'loss', 'lr', 'mse', 'seconds', 'step'] 2 4
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any],
        config: TrainConfig,
        eval_fn: EvalFn | ShardedEval | None = None,
        task: str = "sr",
        extra_state: Any = None,
    ) -> None:
        self.config = config
        self.task = task
        self.extra_state = extra_state
        self.loss_fn = loss_fn
        self.eval_fn = eval_fn
        self.train_data = train_data
        self.device = resolve_device(config.device)
        self.distributed = init_distributed(self.device)
        self.rank, self.local_rank, self.world_size = distributed_info()
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.channels_last = config.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if self.device.type == "cuda" and config.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its algorithms once
        self.optimizer, self._fused = _make_adam(list(self.model.parameters()), config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config))
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.epoch_rng: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self._iterator: Iterator[Any] | None = None
        self._loss_module: nn.Module = _LossModule(self.model, loss_fn)
        self._wrapped: nn.Module | None = None  # DDP / compiled view, built lazily in fit()
        # Divergence on the device: a 0-d flag (1.0 once a step was non-finite; sticky) and the
        # first bad step's [loss, grad norm, step number]; read by the host in _check_diverged().
        self._diverged = torch.zeros((), device=self.device)
        self._diverged_info = torch.zeros(3, device=self.device)
        self.amp = config.amp and self.device.type == "cuda"
        if config.amp and not self.amp:
            log.warning("amp=True needs a CUDA device; training in fp32 on %s", self.device)
        self.use_compile = config.compile and self.device.type == "cuda"
        if config.compile and not self.use_compile:
            log.warning("compile=True is only used on CUDA; running eagerly on %s", self.device)

    # --- checkpoints ------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        """``out_dir/last.pt`` or ``None`` without an output folder."""
        return Path(self.config.out_dir) / CHECKPOINT_NAME if self.config.out_dir else None

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :func:`load_checkpoint`)."""
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

    def load(self, path_or_state: str | os.PathLike | Mapping[str, Any]) -> Trainer:
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

    def _restore(self, ckpt: Mapping[str, Any], source: str) -> Trainer:
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
        cls,
        path: str | os.PathLike,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any],
        config: TrainConfig | None = None,
        eval_fn: EvalFn | ShardedEval | None = None,
        task: str = "sr",
        extra_state: Any = None,
    ) -> Trainer:
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
        return cls(model, loss_fn, train_data, config, eval_fn, task, extra)._restore(ckpt, str(path))

    # --- data -------------------------------------------------------------------------------
    def _new_epoch_iterator(self, record: bool = True) -> Iterator[Any]:
        if record:
            self.epoch_rng = rng_state(self.train_data)
            self.batches_in_epoch = 0
        sampler = getattr(self.train_data, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.epoch)
        return iter(self.train_data)

    def _next_batch(self) -> Any:
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

    # --- training ---------------------------------------------------------------------------
    def _build_wrapped(self, first_batch: Any) -> nn.Module:
        module = self._loss_module
        if self.distributed or self.use_compile:
            # Data-dependent initialisations (actnorm) eagerly, on each rank's own first batch, so
            # that they never run inside a compiled graph; under DDP the constructor then
            # broadcasts rank 0's parameters so that every rank starts equal.
            data_init(self.model, lambda: module(first_batch))
        if self.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
            torch.manual_seed(self.config.seed + 1000 * self.rank + self.step)  # distinct noise per rank
        if self.use_compile:
            module = torch.compile(module)
        return module

    def _out_of_time(self, start: float, budget: float) -> bool:
        """Whether the wall-clock budget is spent; under DDP any rank's clock decides for all.

        The decision is all-reduced (max), so that every rank stops after the same step and none
        waits for the others in a collective that never comes. The flag is a CPU tensor reduced
        over a gloo group (:meth:`_host_group`): the hosts agree without waiting for the device,
        which is still running the steps queued before.
        """
        spent = time.perf_counter() - start >= budget
        if not self.distributed:
            return spent
        flag = torch.tensor([float(spent)])  # on the CPU: reading it never synchronises a GPU
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._host_group())
        return bool(flag.item())

    def _host_group(self) -> Any:
        """A gloo process group for decisions the hosts take together (the default group on the CPU).

        Created on first use, which every rank reaches at the same step (a collective call).
        """
        if self._host_pg is None:
            self._host_pg = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        return self._host_pg

    def _reduce(self, values: Tensor) -> Tensor:
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def _metric(self, value: float | Tensor) -> Tensor:
        """A metric as a 0-d float32 tensor on the device, without a host synchronisation."""
        if isinstance(value, Tensor):
            return value.detach().float().reshape(()).to(self.device)
        return torch.full((), float(value), dtype=torch.float32, device=self.device)  # a fill, not a copy

    def _device_step(self, batch: Any) -> tuple[list[str], Tensor]:
        """One optimisation step that never waits for the device.

        Returns the metric names and their (process-averaged) values as a float32 tensor on the
        device, ``[loss, *metrics, grad_norm]``. A non-finite loss or gradient norm raises the
        divergence flag on the device, and from then on no update is applied (fused Adam's
        ``found_inf``); :meth:`_check_diverged` reports it. Without fused Adam the host checks
        here, every step.
        """
        batch = to_device(batch, self.device)
        if self.channels_last:
            batch = _channels_last(batch)
        if self._wrapped is None:
            self._wrapped = self._build_wrapped(batch)
        self.model.train()
        autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        with autocast:
            loss, metrics = self._wrapped(batch)
        loss = loss.float()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.config.grad_clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        else:
            grad_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad.detach() for p in params])))
        names = ["loss", *metrics.keys(), "grad_norm"]
        values = torch.stack([loss.detach(), *(self._metric(v) for v in metrics.values()), self._metric(grad_norm)])
        values = self._reduce(values)  # [len(names)], equal on every rank
        bad = (~(torch.isfinite(values[0]) & torch.isfinite(values[-1]))).float()  # 0-d
        first = (bad > 0) & (self._diverged == 0)
        info = torch.stack([values[0], values[-1], self._metric(self.step + 1)])
        self._diverged_info = torch.where(first, info, self._diverged_info)
        self._diverged = torch.maximum(self._diverged, bad)
        if self._fused:
            self.optimizer.found_inf = self._diverged  # skips the update (and Adam's step count) once diverged
        else:
            self._check_diverged()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return names, values

    def _check_diverged(self) -> None:
        """Raise :class:`TrainingDiverged` if a step since the start was non-finite (one host sync).

        The steps after the bad one applied no update; the trainer's step count and learning rate
        are set back to the last good step, so its model, optimizer and step are those of the last
        good step (the data position and random state are not rewound).

        Raises:
            TrainingDiverged: the loss or the gradient norm of a step was NaN or infinite.
        """
        flag, loss, grad_norm, bad_step = torch.cat([self._diverged.reshape(1), self._diverged_info]).tolist()
        if not flag:
            return
        self.step = int(bad_step) - 1
        self.scheduler.last_epoch = self.step
        for group, base, factor in zip(
            self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(self.step)
        where = f"; the last good checkpoint is {self.checkpoint_path}" if self._saved_once else ""
        raise TrainingDiverged(
            f"training diverged at step {int(bad_step)}: loss={loss}, grad norm={grad_norm}"
            f"{where}. Lower the learning rate, enable gradient clipping, or check the data, then resume."
        )

    def train_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the (process-averaged) metrics.

        This public step reads its metrics on the host (a synchronisation); :meth:`fit` uses the
        step without one and reads metrics only when it logs.

        Raises:
            TrainingDiverged: the loss or the gradient norm is NaN or infinite (the step is not applied).
        """
        names, values = self._device_step(batch)
        self._check_diverged()
        out = dict(zip(names, values.tolist(), strict=True))
        out["lr"] = self.optimizer.param_groups[0]["lr"]
        return out

    def evaluate(self) -> dict[str, float]:
        """Evaluate with the model in eval mode (no gradients); every rank returns the same metrics.

        A :class:`~.evaluation.ShardedEval` runs on every rank over its :class:`~.evaluation.Shard`
        and the totals are all-reduced. A plain ``eval_fn(model)`` runs on rank 0 while the other
        ranks wait in a barrier (a warning says so once); its metrics are then sent to them.
        """
        if self.eval_fn is None:
            return {}
        sharded = isinstance(self.eval_fn, ShardedEval)
        if self.distributed and not sharded and not self._warned_unsharded:
            self._warned_unsharded = True
            if self.rank == 0:
                log.warning(
                    "eval_fn runs on rank 0 alone while %d other ranks wait; wrap it in ShardedEval to split it",
                    self.world_size - 1,
                )
        result: dict[str, float] = {}
        self.model.eval()
        try:
            with torch.no_grad():
                if sharded:
                    totals = self.eval_fn.totals(self.model, Shard(self.rank, self.world_size))
                    result = means(all_reduce_totals(totals, self.device) if self.distributed else totals)
                elif self.rank == 0:
                    result = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        finally:
            self.model.train()
        if self.distributed and not sharded:
            shared: list[Any] = [result]
            dist.broadcast_object_list(shared, src=0)  # also the barrier: every rank waits for rank 0
            result = shared[0]
        if self.rank == 0:
            log.info("step %d eval: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
        self.last_eval = result
        return result

    _saved_once = False
    _warned_unsharded = False
    _host_pg: Any = None

    def fit(self, until: int | None = None) -> dict[str, float]:
        """Train until ``config.steps``; returns the last training metrics and the last evaluation.

        Args:
            until: Stop early after this step (and write the checkpoint), as if the run had
                been interrupted there; the schedule still follows ``config.steps``.

        Raises:
            TrainingDiverged: NaN/inf loss or gradient; the last checkpoint on disk is kept.
        """
        cfg = self.config
        stop = cfg.steps if until is None else min(until, cfg.steps)
        self._saved_once = self.checkpoint_path is not None and self.checkpoint_path.is_file()
        bar = Progress(
            # Under a time budget the step count is only a ceiling: show a count, not a fraction of it.
            total=None if cfg.max_seconds is not None else cfg.steps,
            initial=self.step,
            desc=f"train {self.task}",
            enabled=cfg.progress and self.rank == 0,
        )
        # Running sums stay on the device ([M] tensor) and are read only when logged.
        names: list[str] = []
        running: Tensor | None = None
        running_lr = 0.0
        count = 0

        def averages() -> dict[str, float]:
            assert running is not None
            avg = dict(zip(names, (running / count).tolist(), strict=True))
            avg["lr"] = running_lr / count
            avg["step"] = self.step
            return avg

        start = time.perf_counter()
        try:
            while self.step < stop:
                names, values = self._device_step(self._next_batch())
                running = values if running is None else running + values
                running_lr += self.optimizer.param_groups[0]["lr"]
                count += 1
                bar.update(1)
                last = self.step >= stop
                if cfg.log_every and (self.step % cfg.log_every == 0 or last):
                    self._check_diverged()
                    avg = averages()
                    self.history.append(avg)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in avg.items() if k in ("loss", "bpd", "lr")})
                    log.debug("step %d: %s", self.step, avg)
                    running, running_lr, count = None, 0.0, 0
                if cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                    self._check_diverged()
                    self.evaluate()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and not last:
                    self._check_diverged()
                    self.save()
                    self._saved_once = self.checkpoint_path is not None
                if cfg.max_seconds is not None and not last and self._out_of_time(start, cfg.max_seconds):
                    log.info("stopping at step %d: the time budget of %.0f s is spent", self.step, cfg.max_seconds)
                    break
        finally:
            bar.close()
        self._check_diverged()
        if count:
            self.history.append(averages())
        finished = self.step >= cfg.steps or cfg.max_seconds is not None
        final = self.evaluate() if self.eval_fn is not None and finished else {}
        self.save()
        elapsed = time.perf_counter() - start
        out = dict(self.history[-1]) if self.history else {"step": float(self.step)}
        out.update({f"eval_{k}": v for k, v in final.items()})
        out["seconds"] = elapsed
        return out
