"""Brute-force reference computations for the flow tests."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def brute_force_logabsdet(fn: Callable[[Tensor], Tensor], y: Tensor) -> Tensor:
    """log|det J| of ``fn`` at each sample of ``y`` by ``torch.autograd.functional.jacobian``.

    ``fn`` maps one batch ``[B, ...]`` to outputs with the same number of entries per
    sample; the Jacobian of each sample is taken separately (``[D, D]``).
    """
    out = []
    for i in range(y.shape[0]):
        yi = y[i : i + 1]

        def single(v: Tensor, i: int = i) -> Tensor:
            return fn(v, i).reshape(-1)

        jac = torch.autograd.functional.jacobian(single, yi)  # [D, 1, ...]
        jac = jac.reshape(jac.shape[0], -1)
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)
