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
- ``device="auto"`` (CUDA, then MPS, then CPU), bf16 mixed precision on GPUs, ``torch.compile``
  of the loss (forward and backward) on GPUs and on the CPU (where it needs a C++ compiler, and
  pays only in long runs: see ``compile`` in :class:`TrainConfig`), and several GPUs with PyTorch
  DDP when launched by ``torchrun``.

Exact resume and the data pipeline: the engine re-creates the data iterator of the
interrupted epoch with the random state it had when that epoch began, skips the batches
already used, then restores the random state of the checkpoint. This is exact when the
pipeline draws its randomness from the global generators or from the ``DataLoader``'s own
``generator`` (both are saved), as :func:`make_loader` does.

References:
    Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Table 5 and
    §5.1 (Adam, learning rate $10^{-4}$, batch 64, 200k iterations for super-resolution).

This module holds what a learner reads first: the set-up and the loop with its time budget
(:class:`Trainer`). The trainer's other jobs are its base classes, one module each:
:class:`~.step.DeviceStep` (the step on the device and the divergence check,
:mod:`cnf_teach.engine.step`), :class:`~.run_state.TrainerState` (checkpoints and exact
resume, :mod:`cnf_teach.engine.run_state`) and :class:`~.collective.Collective` (what the DDP
ranks reduce together, :mod:`cnf_teach.engine.collective`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ..progress import Progress
from .collective import Collective
from .config import TrainConfig, lr_factor
from .devices import compile_unavailable, resolve_device
from .distributed import distributed_info, init_distributed
from .evaluation import EvalFn, ShardedEval
from .run_state import TrainerState
from .step import DeviceStep, LossFn, LossModule, make_adam

__all__ = ["LossFn", "Trainer"]

log = logging.getLogger(__name__)


class Trainer(TrainerState, DeviceStep, Collective):
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
        self.optimizer, self._fused = make_adam(list(self.model.parameters()), config)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(config))
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.epoch_rng: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self._iterator: Iterator[Any] | None = None
        self._loss_module: nn.Module = LossModule(self.model, loss_fn)
        self._wrapped: nn.Module | None = None  # DDP / compiled view, built lazily in fit()
        # Divergence on the device: a 0-d flag (1.0 once a step was non-finite; sticky) and the
        # first bad step's [loss, grad norm, step number]; read by the host in _check_diverged().
        self._diverged = torch.zeros((), device=self.device)
        self._diverged_info = torch.zeros(3, device=self.device)
        self.amp = config.amp and self.device.type == "cuda"
        if config.amp and not self.amp:
            log.warning("amp=True needs a CUDA device; training in fp32 on %s", self.device)
        why_not = compile_unavailable(self.device, config.compile_backend) if config.compile else None
        self.use_compile = config.compile and why_not is None
        if why_not is not None:
            log.warning("compile=True but %s; training eagerly on %s", why_not, self.device)

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
