"""One training engine for every model of the package (super-resolution and vessel segmentation).

A model is trained by minimising a loss that the task supplies,
``loss_fn(model, batch) -> (loss, metrics)``, typically the negative log-likelihood
$-\\log p(y \\mid x)$ in bits per dimension. The engine owns everything else:

- Adam with a learning-rate schedule (constant, cosine or linear decay, with linear warm-up);
- gradient clipping by global norm;
- a tqdm progress bar with the live loss and bits/dim;
- periodic evaluation (``eval_fn(model) -> dict``);
- checkpoints written atomically (to a temporary file, then renamed) holding the model,
  optimizer, scheduler, every random-number generator's state, the data position, the step
  and the ``task``, so that training resumes *exactly*: $N$ steps in one go equal $k$ steps
  plus a resume to $N$, bit for bit on the CPU;
- NaN/inf detection that stops with a clear message and keeps the last good checkpoint;
- ``device="auto"`` (CUDA, then MPS, then CPU), bf16 mixed precision and ``torch.compile``
  on GPUs, and several GPUs with PyTorch DDP when launched by ``torchrun``.

Exact resume and the data pipeline: the engine re-creates the data iterator of the
interrupted epoch with the random state it had when that epoch began, skips the batches
already used, then restores the random state of the checkpoint. This is exact when the
pipeline draws its randomness from the global generators or from the ``DataLoader``'s own
``generator`` (both are saved), as :func:`make_loader` does.

References:
    Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Table 8
    (Adam, learning rate $10^{-4}$, batch 64, 200k iterations for super-resolution).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

__all__ = [
    "TrainConfig",
    "Trainer",
    "TrainingDiverged",
    "resolve_device",
    "load_checkpoint",
    "save_checkpoint",
    "make_loader",
    "distributed_info",
    "CHECKPOINT_NAME",
]

log = logging.getLogger(__name__)

#: File name of the rolling checkpoint inside ``TrainConfig.out_dir``.
CHECKPOINT_NAME = "last.pt"

#: ``loss_fn(model, batch) -> (loss, metrics)``: a scalar tensor to minimise and a dict of
#: floats (or 0-d tensors) to report, e.g. ``{"bpd": 3.2}``.
LossFn = Callable[[nn.Module, Any], "tuple[Tensor, Mapping[str, float | Tensor]]"]
#: ``eval_fn(model) -> {"name": value}``, called with the bare (unwrapped) model in eval mode.
EvalFn = Callable[[nn.Module], Mapping[str, float]]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; training stopped without saving."""


@dataclass
class TrainConfig:
    """Settings of one training run.

    Attributes:
        steps: Total optimisation steps (a resumed run continues up to this number).
        lr: Peak learning rate of Adam.
        batch_size: Batch size per process (informational here; loaders take it from
            :func:`make_loader`).
        grad_clip: Maximum global gradient norm; ``0`` or ``None`` turns clipping off.
        lr_schedule: ``"constant"``, ``"cosine"`` (to 0 at ``steps``) or ``"linear"`` (to 0).
        warmup_steps: Linear warm-up from 0 to ``lr`` over this many steps.
        eval_every: Evaluate every this many steps (0: only at the end, if ``eval_fn``).
        checkpoint_every: Write ``out_dir/last.pt`` every this many steps (0: only at the end).
        log_every: Refresh the progress bar and log every this many steps.
        out_dir: Folder for checkpoints (``None``: no checkpoints).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        amp: bf16 autocast on CUDA (ignored, with a warning, elsewhere).
        compile: Run the loss through ``torch.compile`` (CUDA only; ignored elsewhere).
        seed: Seed of the per-process random state under DDP (rank is added).
        betas: Adam's $(\\beta_1, \\beta_2)$.
        progress: Show a tqdm progress bar.
        max_seconds: Stop (and write the checkpoint) once training has run this long; ``None``:
            no limit. For comparisons at equal wall-clock budget; the schedule still follows ``steps``.
    """

    steps: int = 1000
    lr: float = 1e-4
    batch_size: int = 64
    grad_clip: float | None = 1.0
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    out_dir: str | None = None
    device: str = "auto"
    amp: bool = False
    compile: bool = False
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    progress: bool = True
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine", "linear"):
            raise ValueError(f"lr_schedule must be 'constant', 'cosine' or 'linear', got {self.lr_schedule!r}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "log_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        self.betas = tuple(self.betas)  # a list after a JSON round trip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. a checkpoint's ``config``), ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --- devices and processes ----------------------------------------------------------------------
def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, then MPS, then CPU; otherwise check that ``name`` is usable.

    Raises:
        ValueError: the device is unknown or not available on this machine.
    """
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available here; use --device auto or cpu")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError("device 'mps' requested but MPS is not available here; use --device auto or cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or mps")
    return device


def distributed_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the environment ``torchrun`` sets (``(0, 0, 1)`` alone)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", 1))
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), world


def _init_distributed(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes; ``False`` when running alone."""
    _, _, world = distributed_info()
    if world <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def make_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = True,
) -> DataLoader:
    """A ``DataLoader`` whose order is reproducible (seeded generator) and sharded under DDP.

    Args:
        dataset: Map-style dataset.
        batch_size: Batch size per process.
        seed: Seed of the shuffling (and of the workers' seeds).
        shuffle: Reshuffle every epoch.
        num_workers: Loader worker processes.
        drop_last: Drop the last incomplete batch (keeps batch statistics steady).
    """
    rank, _, world = distributed_info()
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        shuffle = False
    if len(dataset) < batch_size * (world if sampler is None else 1) and drop_last:
        raise ValueError(
            f"the dataset has {len(dataset)} items, fewer than one batch of {batch_size}; "
            "lower the batch size or add data"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        persistent_workers=False,
    )


# --- random state --------------------------------------------------------------------------------
def _rng_state(loader: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - saving the legacy global state that pipelines use
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        state["loader"] = gen.get_state()
    return state


def _set_rng_state(state: Mapping[str, Any], loader: Any = None) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than when saved
            torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if "loader" in state and isinstance(gen, torch.Generator):
        gen.set_state(state["loader"])


# --- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` with ``torch.save`` atomically: to ``path.tmp``, then rename over ``path``.

    A crash while writing leaves the previous checkpoint untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(dict(state), tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by the engine.

    Returns:
        A dict with at least ``"task"`` (``"sr"`` or ``"seg"``), ``"config"`` (the
        :class:`TrainConfig` as a dict), ``"model"`` (state dict), ``"optimizer"``,
        ``"scheduler"``, ``"step"``, ``"rng"``, ``"data"`` and ``"extra"`` (whatever the
        task stored, e.g. its model config).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a checkpoint of this package.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        # Our own files hold numpy RNG states and config dicts, hence weights_only=False.
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(ckpt, dict) or "task" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not a cnf_teach checkpoint (no 'task'/'model' entries)")
    return ckpt


# --- the engine ----------------------------------------------------------------------------------
class _LossModule(nn.Module):
    """Wraps ``loss_fn(model, batch)`` as a module, so DDP and ``torch.compile`` see one forward."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> tuple[Tensor, Mapping[str, Any]]:
        return self.loss_fn(self.model, batch)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "constant":
            return 1.0
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        if config.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    return factor


class Trainer:
    """Trains ``model`` by minimising ``loss_fn`` with Adam; see the module docstring.

    Args:
        model: The model (moved to the configured device).
        loss_fn: ``loss_fn(model, batch) -> (loss, metrics)``.
        train_data: Iterable of batches (a ``DataLoader``); cycled, epoch after epoch.
        config: :class:`TrainConfig`.
        eval_fn: ``eval_fn(model) -> dict`` run every ``eval_every`` steps and at the end.
        task: ``"sr"`` or ``"seg"``, stored in checkpoints so that each CLI recognises its own.
        extra_state: Anything picklable to store in checkpoints (e.g. the model's config).

    Example:
        >>> trainer = Trainer(model, loss_fn, loader, TrainConfig(steps=100, out_dir="runs/a"))
        >>> metrics = trainer.fit()
        >>> trainer = Trainer.resume("runs/a/last.pt", model, loss_fn, loader, TrainConfig(steps=200))
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any],
        config: TrainConfig,
        eval_fn: EvalFn | None = None,
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
        self.distributed = _init_distributed(self.device)
        self.rank, self.local_rank, self.world_size = distributed_info()
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=config.betas)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(config))
        self.step = 0
        self.epoch = 0
        self.batches_in_epoch = 0
        self.epoch_rng: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self.last_eval: dict[str, float] = {}
        self._iterator: Iterator[Any] | None = None
        self._loss_module: nn.Module = _LossModule(self.model, loss_fn)
        self._wrapped: nn.Module | None = None  # DDP / compiled view, built lazily in fit()
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
            "rng": _rng_state(self.train_data),
            "data": {"epoch": self.epoch, "batches": self.batches_in_epoch, "epoch_rng": self.epoch_rng},
            "extra": self.extra_state,
            "metrics": {"train": self.history[-1] if self.history else {}, "eval": self.last_eval},
            "torch_version": torch.__version__,
        }

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (rank 0 only) atomically; returns its path."""
        path = path if path is not None else self.checkpoint_path
        if path is None or self.rank != 0:
            return None
        return save_checkpoint(self.state_dict(), path)

    def load(self, path_or_state: str | os.PathLike | Mapping[str, Any]) -> Trainer:
        """Restore model, optimizer, scheduler, step, data position and random state."""
        ckpt = path_or_state if isinstance(path_or_state, Mapping) else load_checkpoint(path_or_state)
        if ckpt.get("task") != self.task:
            raise ValueError(
                f"this checkpoint was written by a {ckpt.get('task')!r} run, not {self.task!r}; "
                "use the matching command"
            )
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step = int(ckpt["step"])
        data = ckpt.get("data") or {}
        self.epoch = int(data.get("epoch", 0))
        self.batches_in_epoch = int(data.get("batches", 0))
        self.epoch_rng = data.get("epoch_rng")
        self.history = [ckpt["metrics"]["train"]] if ckpt.get("metrics", {}).get("train") else []
        self.last_eval = dict(ckpt.get("metrics", {}).get("eval", {}))
        self._iterator = None
        if self.epoch_rng is not None:
            # Replay the interrupted epoch's order up to where it stopped ...
            _set_rng_state(self.epoch_rng, self.train_data)
            self._iterator = self._new_epoch_iterator(record=False)
            for _ in range(self.batches_in_epoch):
                next(self._iterator)
        # ... then continue from the checkpoint's exact random state.
        _set_rng_state(ckpt["rng"], self.train_data)
        return self

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Iterable[Any],
        config: TrainConfig | None = None,
        eval_fn: EvalFn | None = None,
        task: str = "sr",
        extra_state: Any = None,
    ) -> Trainer:
        """A trainer restored from ``path``; ``config`` (e.g. with more ``steps``) overrides the stored one."""
        ckpt = load_checkpoint(path)
        config = config if config is not None else TrainConfig.from_dict(ckpt["config"])
        extra = extra_state if extra_state is not None else ckpt.get("extra")
        return cls(model, loss_fn, train_data, config, eval_fn, task, extra).load(ckpt)

    # --- data -------------------------------------------------------------------------------
    def _new_epoch_iterator(self, record: bool = True) -> Iterator[Any]:
        if record:
            self.epoch_rng = _rng_state(self.train_data)
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
        if self.distributed:
            if self.step == 0:
                # Data-dependent initialisations (actnorm) on each rank's own first batch, then
                # DDP's constructor broadcasts rank 0's parameters so that every rank starts equal.
                with torch.no_grad():
                    module(first_batch)
            ids = [self.device.index] if self.device.type == "cuda" else None
            module = nn.parallel.DistributedDataParallel(module, device_ids=ids)
            torch.manual_seed(self.config.seed + 1000 * self.rank + self.step)  # distinct noise per rank
        if self.use_compile:
            module = torch.compile(module)
        return module

    def _reduce(self, values: Tensor) -> Tensor:
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def train_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step on ``batch``; returns the (process-averaged) metrics.

        Raises:
            TrainingDiverged: the loss or the gradient norm is NaN or infinite.
        """
        batch = _to_device(batch, self.device)
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
            grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.detach().norm() for p in params]))
        names = ["loss", *metrics.keys(), "grad_norm"]
        values = torch.stack(
            [loss.detach(), *(torch.as_tensor(v, dtype=torch.float32).to(self.device) for v in metrics.values())]
            + [grad_norm.detach().float()]
        ).float()
        values = self._reduce(values).tolist()
        out = dict(zip(names, values, strict=True))
        if not (math.isfinite(out["loss"]) and math.isfinite(out["grad_norm"])):
            where = f"; the last good checkpoint is {self.checkpoint_path}" if self._saved_once else ""
            raise TrainingDiverged(
                f"training diverged at step {self.step + 1}: loss={out['loss']}, grad norm={out['grad_norm']}"
                f"{where}. Lower the learning rate, enable gradient clipping, or check the data, then resume."
            )
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        out["lr"] = self.optimizer.param_groups[0]["lr"]
        return out

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` on rank 0 with the model in eval mode (no gradients)."""
        if self.eval_fn is None:
            return {}
        result: dict[str, float] = {}
        if self.rank == 0:
            self.model.eval()
            with torch.no_grad():
                result = {k: float(v) for k, v in self.eval_fn(self.model).items()}
            self.model.train()
            log.info("step %d eval: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
        if self.distributed:
            dist.barrier()
        self.last_eval = result
        return result

    _saved_once = False

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
        bar = tqdm(
            # Under a time budget the step count is only a ceiling: show a count, not a fraction of it.
            total=None if cfg.max_seconds is not None else cfg.steps,
            initial=self.step,
            desc=f"train {self.task}",
            disable=not cfg.progress or self.rank != 0,
            dynamic_ncols=True,
        )
        running: dict[str, float] = {}
        count = 0
        start = time.perf_counter()
        try:
            while self.step < stop:
                metrics = self.train_step(self._next_batch())
                for k, v in metrics.items():
                    running[k] = running.get(k, 0.0) + v
                count += 1
                bar.update(1)
                last = self.step >= stop
                if cfg.log_every and (self.step % cfg.log_every == 0 or last):
                    avg = {k: v / count for k, v in running.items()}
                    avg["step"] = self.step
                    self.history.append(avg)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in avg.items() if k in ("loss", "bpd", "lr")})
                    log.debug("step %d: %s", self.step, avg)
                    running, count = {}, 0
                if cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                    self.evaluate()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and not last:
                    self.save()
                    self._saved_once = self.checkpoint_path is not None
                if cfg.max_seconds is not None and time.perf_counter() - start >= cfg.max_seconds and not last:
                    log.info("stopping at step %d: the time budget of %.0f s is spent", self.step, cfg.max_seconds)
                    break
        finally:
            bar.close()
        if count:
            avg = {k: v / count for k, v in running.items()}
            avg["step"] = self.step
            self.history.append(avg)
        finished = self.step >= cfg.steps or cfg.max_seconds is not None
        final = self.evaluate() if self.eval_fn is not None and finished else {}
        self.save()
        elapsed = time.perf_counter() - start
        out = dict(self.history[-1]) if self.history else {"step": float(self.step)}
        out.update({f"eval_{k}": v for k, v in final.items()})
        out["seconds"] = elapsed
        return out
