"""The training step on the device: Adam, the loss as one module, and divergence without waiting.

A step computes ``loss_fn(model, batch)``, back-propagates, clips the gradient norm and lets Adam
update the parameters. It never waits for the device: a non-finite loss or gradient norm raises
a flag *on the device*, and Adam (fused, where the device has it) skips its update while the
flag is up, as ``torch.amp.GradScaler`` does with ``found_inf``. The host reads the flag only
when it logs, evaluates or saves (:meth:`DeviceStep._check_diverged`), and then stops with
:class:`~cnf_teach.engine.TrainingDiverged`: no non-finite step is ever applied.

:class:`DeviceStep` is the part of :class:`~cnf_teach.engine.Trainer` that does this; the
trainer's set-up gives it ``model``, ``optimizer``, ``scheduler``, ``device`` and the flags.

References:
    Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..flows.actnorm import data_init
from .config import TrainConfig, TrainingDiverged
from .devices import to_device

__all__ = ["DeviceStep", "LossFn", "LossModule", "make_adam", "to_channels_last"]

#: ``loss_fn(model, batch) -> (loss, metrics)``: a scalar tensor to minimise and a dict of
#: floats (or 0-d tensors) to report, e.g. ``{"bpd": 3.2}``.
LossFn = Callable[[nn.Module, Any], "tuple[Tensor, Mapping[str, float | Tensor]]"]


def make_adam(params: list[nn.Parameter], config: TrainConfig) -> tuple[torch.optim.Adam, bool]:
    """Adam, fused when the parameters' device supports it; returns ``(optimizer, fused)``.

    Only the fused implementation can skip an update on the device (its ``found_inf``), which
    lets the step run without a host synchronisation.
    """
    try:
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True), True
    except (RuntimeError, ValueError):  # a device without fused Adam: the host checks every step
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas), False


def to_channels_last(batch: Any) -> Any:
    """Image tensors (4-D, floating point) of a (nested) batch in channels-last memory format."""
    if isinstance(batch, Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch
    if isinstance(batch, Mapping):
        return {k: to_channels_last(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_channels_last(v) for v in batch)
    return batch


class LossModule(nn.Module):
    """Wraps ``loss_fn(model, batch)`` as a module, so DDP and ``torch.compile`` see one forward.

    Args:
        model: The model being trained (a submodule, so its parameters are this module's).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine.step import LossModule
        >>> wrapped = LossModule(nn.Linear(2, 1), lambda m, b: (m(b).mean(), {}))
        >>> loss, metrics = wrapped(torch.zeros(3, 2))
        >>> loss.shape, len(list(wrapped.parameters()))
        (torch.Size([]), 2)
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> tuple[Tensor, Mapping[str, Any]]:
        return self.loss_fn(self.model, batch)


class DeviceStep:
    """The optimisation step of :class:`~cnf_teach.engine.Trainer`, and its divergence check.

    A part of the trainer (it is one of its base classes), not used alone: the trainer's
    set-up provides the attributes below.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine import TrainConfig, Trainer
        >>> from cnf_teach.engine.step import DeviceStep
        >>> trainer = Trainer(nn.Linear(2, 1), lambda m, b: (m(b).pow(2).mean(), {}), [],
        ...                   TrainConfig(steps=1, device="cpu", progress=False))
        >>> isinstance(trainer, DeviceStep), trainer.step
        (True, 0)
        >>> sorted(trainer.train_step(torch.ones(4, 2))), trainer.step
        (['grad_norm', 'loss', 'lr'], 1)
    """

    config: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Adam
    scheduler: torch.optim.lr_scheduler.LambdaLR
    device: torch.device
    step: int
    rank: int
    distributed: bool
    channels_last: bool
    amp: bool
    use_compile: bool
    checkpoint_path: Any
    _fused: bool
    _loss_module: nn.Module
    _wrapped: nn.Module | None
    _diverged: Tensor
    _diverged_info: Tensor
    _saved_once: bool = False
    _reduce: Callable[[Tensor], Tensor]  # the mean over the DDP ranks (Collective._reduce)

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
            module = torch.compile(module, backend=self.config.compile_backend)
        return module

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
            batch = to_channels_last(batch)
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
