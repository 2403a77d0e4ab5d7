"""The bijection interface shared by every flow layer, and their composition.

Every layer maps data to latent, ``z, logdet = layer(y, h)``, and back,
``y = layer.inverse(z, h)``. ``logdet`` is $\\log|\\det \\partial z / \\partial y|$ per
sample, shape ``[B]``. Stacking layers adds their log-determinants: this is the
change-of-variables formula, eq. (1) of Winkler et al. 2019, and its conditional
form eq. (7):

$$\\log p(y \\mid x) = \\log p(z \\mid x) + \\log \\left|\\det \\frac{\\partial z}{\\partial y}\\right|.$$

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019.
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..utils import check_condition, high_precision, sum_except_batch

__all__ = ["Bijection", "FlowSequence", "Reverse", "Permute", "sum_except_batch", "check_condition", "zero_logdet"]


def zero_logdet(y: Tensor) -> Tensor:
    """A zero log-determinant for the batch ``y``: ``[B]``, in at least float32 (never bf16/fp16)."""
    return torch.zeros(y.shape[0], dtype=high_precision(y.dtype), device=y.device)


class Bijection(nn.Module):
    """Base class of an invertible layer $z = f(y; h)$.

    Subclasses implement :meth:`forward` (data -> latent, with log-determinant) and
    :meth:`inverse` (latent -> data). ``h`` is optional conditioning (a feature map
    $h = g(x)$ of the conditioning input); unconditional layers ignore it.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Bijection
        >>> class Shift(Bijection):  # z = y + 1, volume preserving
        ...     def forward(self, y, h=None):
        ...         return y + 1, torch.zeros(y.shape[0])
        ...     def inverse(self, z, h=None):
        ...         return z - 1
        >>> y = torch.zeros(2, 3)
        >>> z, logdet = Shift()(y)
        >>> z.shape, logdet.shape
        (torch.Size([2, 3]), torch.Size([2]))
        >>> torch.equal(Shift().inverse(z), y)
        True
    """

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Map data to latent.

        Args:
            y: Input, ``[B, ...]``.
            h: Optional conditioning features.

        Returns:
            ``(z, logdet)`` with ``z`` shaped like ``y`` (unless the layer reshapes)
            and ``logdet`` = $\\log|\\det \\partial z/\\partial y|$ of shape ``[B]``.
        """
        raise NotImplementedError

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        """Map latent back to data: the exact inverse of :meth:`forward`."""
        raise NotImplementedError


class FlowSequence(Bijection):
    """A composition $f = f_K \\circ \\dots \\circ f_1$ of bijections.

    Implements eq. (1)/(7) of Winkler et al. 2019 for a stack: the log-determinant
    of the composition is the sum of the layers' log-determinants. The same ``h``
    is passed to every layer.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import ActNorm, ElementwiseAffine, FlowSequence, Reverse
        >>> _ = torch.manual_seed(0)
        >>> flow = FlowSequence([ActNorm(4), Reverse(4), ElementwiseAffine((4,), log_scale=0.5)])
        >>> y = torch.randn(2, 4)
        >>> z, logdet = flow(y)  # logdet: the sum of the three layers' log-determinants
        >>> len(flow), z.shape, logdet.shape
        (3, torch.Size([2, 4]), torch.Size([2]))
        >>> torch.allclose(flow.inverse(z), y, atol=1e-5)
        True
    """

    def __init__(self, layers: Iterable[Bijection]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        logdet = zero_logdet(y)  # [B]
        for layer in self.layers:
            y, ld = layer(y, h)
            logdet = logdet + ld
        return y, logdet

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        for layer in reversed(self.layers):
            z = layer.inverse(z, h)
        return z

    def __len__(self) -> int:
        return len(self.layers)


class Permute(Bijection):
    """A fixed permutation of dimension 1 (features or channels); $|\\det| = 1$.

    Args:
        permutation: The permutation, a 1D tensor of indices.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Permute
        >>> perm = Permute(torch.tensor([2, 0, 1]))
        >>> z, logdet = perm(torch.tensor([[10.0, 20.0, 30.0]]))
        >>> z.tolist(), logdet.tolist()
        ([[30.0, 10.0, 20.0]], [0.0])
        >>> perm.inverse(z).tolist()
        [[10.0, 20.0, 30.0]]
        >>> Permute(torch.tensor([0, 0, 1]))
        Traceback (most recent call last):
        ...
        ValueError: not a permutation of 0..2: ...
    """

    def __init__(self, permutation: Tensor) -> None:
        super().__init__()
        permutation = torch.as_tensor(permutation, dtype=torch.long)
        if sorted(permutation.tolist()) != list(range(len(permutation))):
            raise ValueError(f"not a permutation of 0..{len(permutation) - 1}: {permutation}")
        self.register_buffer("perm", permutation)
        self.register_buffer("inv_perm", torch.argsort(permutation))

    @classmethod
    def random(cls, num_features: int, generator: torch.Generator | None = None) -> Permute:
        """A random permutation of ``num_features`` features."""
        return cls(torch.randperm(num_features, generator=generator))

    def _check(self, y: Tensor) -> None:
        if y.dim() < 2 or y.shape[1] != len(self.perm):
            raise ValueError(
                f"{type(self).__name__} expects {len(self.perm)} features in dim 1, got shape "
                f"{tuple(y.shape)}; build the layer with num_features={y.shape[1] if y.dim() > 1 else '?'}"
            )

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(y)
        return y[:, self.perm], zero_logdet(y)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        self._check(z)
        return z[:, self.inv_perm]


class Reverse(Permute):
    """Reverse the order of dimension 1, so the next coupling changes the other half.

    Args:
        num_features: Size of dimension 1.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Reverse
        >>> z, logdet = Reverse(4)(torch.arange(8.0).reshape(2, 4))
        >>> z.tolist()
        [[3.0, 2.0, 1.0, 0.0], [7.0, 6.0, 5.0, 4.0]]
        >>> logdet.tolist()
        [0.0, 0.0]
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(torch.arange(num_features - 1, -1, -1))
