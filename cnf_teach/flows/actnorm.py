"""Activation normalisation (actnorm) with data-dependent initialisation.

$z = (y - b) \\odot e^{-s}$ per channel, with $b$ and $s$ set on the first batch so
that every channel of $z$ has zero mean and unit variance, then trained as ordinary
parameters (Kingma & Dhariwal 2018, §3.1). It plays the role batch norm plays in
other networks, but is an exact bijection independent of the batch after
initialisation. For ``[B, C, H, W]`` inputs each channel's log-scale counts once per
pixel: $\\log|\\det| = -H W \\sum_c s_c$.

Initialisation and ``torch.compile``. Whether a layer is initialised is kept twice: as
the buffer ``initialized`` (so that it travels in checkpoints) and as a plain Python flag
that :meth:`ActNorm.forward` reads. Reading the buffer would cost a host-device sync and a
graph break on every step; the flag costs nothing. Loading a state dict updates the flag
from the buffer. Run the data-dependent initialisation eagerly, before the first compiled
step, with :func:`data_init`.

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ..utils import to_high_precision
from .base import Bijection

__all__ = ["ActNorm", "data_init", "needs_data_init"]


class ActNorm(Bijection):
    """Per-channel affine normalisation, initialised from the first batch it sees.

    Works on vectors ``[B, C]`` and images ``[B, C, H, W]``. Initialisation happens
    on the first call to :meth:`forward` in training mode; until then the layer is
    the identity. ``initialized`` is a buffer so it travels in checkpoints; the forward
    pass reads a Python mirror of it (no host sync, no graph break under ``torch.compile``).

    Args:
        num_channels: Channels (or features) $C$.
        eps: Added to the standard deviation at initialisation.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import ActNorm
        >>> _ = torch.manual_seed(0)
        >>> actnorm = ActNorm(4)
        >>> y = 3 + 2 * torch.randn(2, 4, 8, 8)
        >>> z, logdet = actnorm(y)  # the first batch in training mode initialises the layer
        >>> actnorm.is_initialized, z.shape, logdet.shape
        (True, torch.Size([2, 4, 8, 8]), torch.Size([2]))
        >>> torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)  # zero mean per channel
        True
        >>> torch.allclose(actnorm.inverse(z), y, atol=1e-5)
        True
    """

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.log_scale = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("initialized", torch.tensor(False))
        self._initialized = False  # Python mirror of the buffer, read by forward()

    @property
    def is_initialized(self) -> bool:
        """Whether the data-dependent initialisation has run (or was loaded from a checkpoint)."""
        return self._initialized

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._initialized = bool(self.initialized)  # eager, once per load: keep the mirror in step

    def _view(self, p: Tensor, y: Tensor) -> Tensor:
        return p.view(1, -1, *([1] * (y.dim() - 2)))  # [1, C, 1, 1] for images

    def _check(self, y: Tensor) -> None:
        if y.dim() < 2 or y.shape[1] != self.num_channels:
            raise ValueError(
                f"ActNorm was built for {self.num_channels} channels but got input of shape "
                f"{tuple(y.shape)}; build it with num_channels={y.shape[1] if y.dim() > 1 else '?'}"
            )

    @torch.no_grad()
    def initialize(self, y: Tensor) -> None:
        """Set bias and scale so that ``forward(y)`` has zero mean, unit variance per channel."""
        flat = y.transpose(0, 1).reshape(self.num_channels, -1)  # [C, B*H*W]
        self.bias.copy_(flat.mean(dim=1))
        std = flat.std(dim=1, unbiased=False) if flat.shape[1] > 1 else torch.ones_like(self.bias)
        self.log_scale.copy_(torch.log(std + self.eps))
        self.initialized.fill_(True)
        self._initialized = True

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        y = to_high_precision(y)
        if self.training and not self._initialized:
            self.initialize(y)
        z = (y - self._view(self.bias, y)) * torch.exp(-self._view(self.log_scale, y))
        pixels = y[0, 0].numel()  # H * W for images, 1 for vectors
        logdet = -self.log_scale.sum() * pixels
        return z, logdet.expand(y.shape[0])

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        z = to_high_precision(z)
        return z * torch.exp(self._view(self.log_scale, z)) + self._view(self.bias, z)


def needs_data_init(model: nn.Module) -> bool:
    """Whether any :class:`ActNorm` (or subclass) in ``model`` still waits for its first batch."""
    return any(isinstance(m, ActNorm) and not m.is_initialized for m in model.modules())


@torch.no_grad()
def data_init(model: nn.Module, forward: Callable[[], Any]) -> bool:
    """Run the data-dependent initialisation eagerly: call ``forward()`` once in training mode.

    Call it before the first step of a compiled (or CUDA-graphed) training loop, so that the
    initialisation, which reads batch statistics and flips the layers' flags, never runs
    inside the compiled graph. Does nothing when every actnorm is initialised already.

    Args:
        model: The model whose actnorm layers to initialise.
        forward: Runs the model on one batch, e.g. ``lambda: loss_fn(model, batch)``.

    Returns:
        Whether ``forward`` was called.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import ActNorm, FlowSequence, Reverse, data_init, needs_data_init
        >>> model = FlowSequence([ActNorm(2), Reverse(2)]).eval()
        >>> y = torch.arange(8.0).reshape(4, 2)
        >>> needs_data_init(model)
        True
        >>> data_init(model, lambda: model(y))  # runs once, in training mode
        True
        >>> needs_data_init(model), model.training  # initialised, and back in eval mode
        (False, False)
        >>> data_init(model, lambda: model(y))  # nothing left to do
        False
    """
    if not needs_data_init(model):
        return False
    was_training = model.training
    model.train()
    try:
        forward()
    finally:
        model.train(was_training)
    return True
