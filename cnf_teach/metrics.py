"""Metrics: likelihoods in bits per dimension.

Papers on likelihood models report $-\\log_2 p / D$, "bits per dimension" (bpd):
the negative log-likelihood in nats divided by $D \\ln 2$, where $D$ is the number of
dimensions (pixels x channels). Discrete data adds bookkeeping for the bin width,
handled with dequantization.
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["nats_to_bits_per_dim"]


def nats_to_bits_per_dim(log_prob: Tensor, num_dims: int) -> Tensor:
    """$-\\log p / (D \\ln 2)$: a log-likelihood in nats to bits per dimension.

    Args:
        log_prob: $\\log p$ in nats, any shape (typically ``[B]``).
        num_dims: $D$, the dimensions of one sample.

    Returns:
        Bits per dimension, same shape as ``log_prob``. No bin-width correction is
        applied: the input is taken as the log-probability (or density) to report.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    return -log_prob / (num_dims * math.log(2.0))
