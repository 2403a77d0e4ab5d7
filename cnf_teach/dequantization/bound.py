"""The dequantization bound: a lower bound on $\\log P(y)$ from a dequantizer and a model density.

:func:`dequantized_log_likelihood` takes any dequantizer (``v, log_q = deq(y, h)``) and any
$v \\mapsto \\log p(v)$, and returns the one-sample bound $\\log p(v) - \\log q(v \\mid y)$ (the
variational bound of eqs. (4)-(5) of Winkler et al. 2019) or, from $S > 1$ samples, the tighter
importance-weighted bound (Burda et al. 2016; Hoogeboom et al. 2020). Its own file because it
is where a dequantizer meets the model, whichever dequantizer it is.

References:
    Winkler, Worrall, Hoogeboom, Welling. Learning Likelihoods with Conditional
    Normalizing Flows. arXiv:1912.00042, 2019, §2.1 (eqs. 4-5).
    Burda, Grosse, Salakhutdinov. Importance Weighted Autoencoders. ICLR 2016.
    Hoogeboom, Cohen, Tomczak. Learning Discrete Distributions by Dequantization. 2020.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["dequantized_log_likelihood"]


def dequantized_log_likelihood(
    log_prob_fn: Callable[[Tensor], Tensor],
    dequantizer: nn.Module,
    y: Tensor,
    h: Tensor | None = None,
    num_samples: int = 1,
) -> Tensor:
    """A lower bound on $\\log P(y)$ of discrete data, in nats, ``[B]``.

    Implements eqs. (4)-(5) of Winkler et al. 2019. With $S$ samples $v_s \\sim q(v \\mid y)$
    and importance weights $\\log w_s = \\log p(v_s) - \\log q(v_s \\mid y)$:

    - $S = 1$: the variational bound $\\log p(v) - \\log q(v \\mid y)$, the training objective;
    - $S > 1$: the importance-weighted bound $\\log \\frac1S \\sum_s w_s$ (Burda et al. 2016),
      tighter, increasing in $S$, and equal to $\\log P(y)$ as $S \\to \\infty$; use it for
      evaluation.

    Args:
        log_prob_fn: $v \\mapsto \\log p(v)$ (``[B, ...] -> [B]``), e.g.
            ``lambda v: flow.log_prob(v, x)``.
        dequantizer: A module with ``v, log_q = dequantizer(y, h)``.
        y: Discrete data ``[B, ...]``.
        h: Conditioning features for the dequantizer, or ``None``.
        num_samples: $S \\ge 1$.

    Returns:
        The bound in nats per sample, ``[B]``.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    log_w = []
    for _ in range(num_samples):
        v, log_q = dequantizer(y, h)
        log_w.append(log_prob_fn(v) - log_q)
    if num_samples == 1:
        return log_w[0]
    return torch.logsumexp(torch.stack(log_w), dim=0) - math.log(num_samples)
