"""Metrics: likelihoods in bits per dimension.

Papers on likelihood models report $-\\log_2 p / D$, "bits per dimension" (bpd):
the negative log-likelihood in nats divided by $D \\ln 2$, where $D$ is the number of
dimensions (pixels x channels). Discrete data adds bookkeeping for the bin width,
handled with dequantization.
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["dequantized_bits_per_dim", "nats_to_bits_per_dim"]


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


def dequantized_bits_per_dim(
    log_density: Tensor, num_dims: int, num_bins: int = 256, data_range: float = 1.0
) -> Tensor:
    """Bits per dimension of *discrete* data from a density at uniformly dequantized points.

    A flow trained on $v = (y + u)\\,\\Delta$, $u \\sim \\mathcal{U}[0, 1)^D$, with bin width
    $\\Delta = $ ``data_range / num_bins`` (1/256 for 8-bit data scaled to $[0, 1)$), gives a
    density $\\log p(v)$ in nats. $\\log p(v) + D \\log\\Delta$ is a one-sample estimate of a lower
    bound on $\\log P(y)$ (eq. (4) of Winkler et al. 2019), so this returns

    $$\\frac{-\\log p(v)}{D \\ln 2} - \\log_2 \\Delta \\;\\ge\\; -\\frac{\\log_2 P(y)}{D},$$

    an *upper bound* on the discrete data's bits per dimension (a bound in expectation over
    $u$; a single draw can fall on either side). For 8-bit data in $[0, 1)$ that is $+8$ bits; for data
    kept in $[0, 256)$ (``data_range=256``) the correction is 0. Use
    :func:`nats_to_bits_per_dim` instead for figures that are log-probabilities of the
    discrete data already (exact baselines, or the bound of
    :func:`cnf_teach.dequantization.dequantized_log_likelihood`, whose $\\log q$ holds the
    bin width).

    Args:
        log_density: $\\log p(v)$ in nats, any shape (typically ``[B]``).
        num_dims: $D$, the dimensions of one sample.
        num_bins: $K$, the number of discrete levels.
        data_range: Width of the interval the $K$ bins tile (1.0 for $[0, 1)$).

    Returns:
        Bits per dimension, same shape as ``log_density``.
    """
    if num_bins < 2 or data_range <= 0:
        raise ValueError(f"need num_bins >= 2 and data_range > 0, got num_bins={num_bins}, data_range={data_range}")
    bin_width = data_range / num_bins
    return nats_to_bits_per_dim(log_density, num_dims) - math.log2(bin_width)
