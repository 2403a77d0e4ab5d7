"""Settings of a training run (:class:`TrainConfig`) and the error raised when training diverges.

References:
    Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

__all__ = ["TrainConfig", "TrainingDiverged", "lr_factor"]


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became NaN or infinite; training stopped without saving.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine import TrainConfig, Trainer, TrainingDiverged
        >>> def nan_loss(model, batch):
        ...     return model(batch).sum() * float("nan"), {}
        >>> config = TrainConfig(steps=1, device="cpu", progress=False)
        >>> try:
        ...     Trainer(nn.Linear(2, 1), nan_loss, [torch.ones(1, 2)], config).fit()
        ... except TrainingDiverged as err:
        ...     print(err)
        training diverged at step 1: loss=nan, grad norm=nan. Lower the learning rate, ...
    """


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
        compile: Run the loss (forward and backward) through ``torch.compile``, on CUDA and on the
            CPU (which needs a C++ compiler; without one, or on MPS, a warning and eager training).
            The first step pays the compilation (on a 2-core CPU about 1.5 to 3 minutes with an
            empty compiler cache, much less with a warm one), so it pays only in long runs; see
            "Compiled training on the CPU" on the Benchmarks page.
        compile_backend: ``torch.compile``'s backend: ``"inductor"`` (generated code, the fast
            one) or e.g. ``"aot_eager"`` (traces forward and backward but runs them eagerly: a
            quick check that a model compiles, without the code generation).
        seed: Seed of the per-process random state under DDP (rank is added).
        betas: Adam's $(\\beta_1, \\beta_2)$.
        progress: Report progress: a bar on a terminal, log lines elsewhere (:mod:`cnf_teach.progress`).
        max_seconds: Stop (and write the checkpoint) once training has run this long; ``None``:
            no limit. For comparisons at equal wall-clock budget; the schedule still follows ``steps``.
        channels_last: Keep the model's weights (and image batches) in channels-last memory
            format on CUDA, which tensor cores prefer for convolutions.
        cudnn_benchmark: Let cuDNN pick the fastest convolution algorithms for the (fixed)
            input shapes on CUDA.

    Examples:
        >>> from dataclasses import asdict
        >>> from cnf_teach.engine import TrainConfig
        >>> from cnf_teach.engine.config import lr_factor
        >>> config = TrainConfig(steps=200, lr=1e-3, lr_schedule="cosine", warmup_steps=10, device="cpu")
        >>> factor = lr_factor(config)  # multiplies lr: warm-up, then cosine decay to 0
        >>> [round(factor(step), 3) for step in (0, 9, 105, 200)]
        [0.1, 1.0, 0.5, 0.0]
        >>> TrainConfig.from_dict({**asdict(config), "unknown": 1}) == config  # as stored in checkpoints
        True
        >>> TrainConfig(lr_schedule="step")
        Traceback (most recent call last):
        ...
        ValueError: lr_schedule must be 'constant', 'cosine' or 'linear', got 'step'
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
    compile_backend: str = "inductor"
    seed: int = 0
    betas: tuple[float, float] = (0.9, 0.999)
    progress: bool = True
    max_seconds: float | None = None
    channels_last: bool = False
    cudnn_benchmark: bool = True

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


def lr_factor(config: TrainConfig) -> Callable[[int], float]:
    """The learning-rate multiplier at each step: linear warm-up, then constant, cosine or linear decay."""

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
