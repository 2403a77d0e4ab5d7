"""Typical wrong answers to the exercises of ``tutorials/05_dequantization.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

BPD = """def discrete_bits_per_dim(log_density, num_dims, bin_width):
    return {ret}
"""

BINARY = """def binary_dequantize(y, eps, shift, log_scale):
    w = shift + torch.exp(log_scale) * eps
    sign = {sign}
    v = {v}
    log_q = {log_q}
    return v, log_q
"""
SIGN_OK = "2.0 * y - 1.0"
V_OK = "0.5 + sign * F.softplus(w)"
LOG_Q_OK = "gaussian_log_prob(eps) - log_scale.sum(dim=1) - F.logsigmoid(w).sum(dim=1)"

IW = """def importance_weighted_bound(log_p, log_q):
    return {ret}
"""

MISTAKES = [
    # --- Exercise 1: bits/dim bookkeeping
    Mistake(
        "bpd",
        BPD.format(ret="-(log_density + num_dims * math.log(bin_width)) / num_dims"),
        fails=["bpd-uniform", "bpd-library"],
        why="natural log: nats per dimension, not bits",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="-log_density / (num_dims * math.log(2.0))"),
        fails=["bpd-uniform", "bpd-library"],
        why="forgotten bin width",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="-(log_density - num_dims * math.log(bin_width)) / (num_dims * math.log(2.0))"),
        fails=["bpd-uniform", "bpd-library"],
        why="bin width with the wrong sign",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="-(log_density + num_dims * math.log(bin_width)) / math.log(2.0)"),
        fails=["bpd-uniform", "bpd-library"],
        why="bits per image, not per dimension",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="-(log_density + math.log(bin_width)) / (num_dims * math.log(2.0))"),
        fails=["bpd-uniform", "bpd-library"],
        why="bin width counted once instead of once per dimension",
    ),
    # --- Exercise 2: the binary dequantizer
    Mistake(
        "binary-deq",
        BINARY.format(sign="1.0 - 2.0 * y", v=V_OK, log_q=LOG_Q_OK),
        fails=["binary-deq-side", "binary-deq-logq"],
        why="noise on the wrong side of 1/2",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign=SIGN_OK, v="0.5 + sign * w", log_q=LOG_Q_OK),
        fails=["binary-deq-side", "binary-deq-logq"],
        why="no softplus: w can cross the threshold",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign=SIGN_OK, v=V_OK, log_q="gaussian_log_prob(eps) - log_scale.sum(dim=1)"),
        fails=["binary-deq-logq"],
        why="forgotten log-derivative of the softplus",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign=SIGN_OK, v=V_OK, log_q="gaussian_log_prob(eps) - F.logsigmoid(w).sum(dim=1)"),
        fails=["binary-deq-logq"],
        why="forgotten log-det of the noise flow",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(
            sign=SIGN_OK, v=V_OK, log_q="gaussian_log_prob(eps) + log_scale.sum(dim=1) + F.logsigmoid(w).sum(dim=1)"
        ),
        fails=["binary-deq-logq"],
        why="sign error: log-dets added to log N(eps)",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(
            sign=SIGN_OK,
            v=V_OK,
            log_q="gaussian_log_prob(eps) - log_scale.sum(dim=1) - torch.log(F.softplus(w)).sum(dim=1)",
        ),
        fails=["binary-deq-logq"],
        why="log softplus(w) instead of its log-derivative log sigmoid(w)",
    ),
    # --- Exercise 3: the importance-weighted bound
    Mistake(
        "iw-bound",
        IW.format(ret="(log_p - log_q).mean(dim=0)"),
        fails=["iw-bound-tighter"],
        why="averages the log-ratios (the one-sample bound) instead of the ratios",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_p - log_q, dim=0)"),
        fails=["iw-bound-exact", "iw-bound-tighter"],
        why="forgotten -log S: a sum, not a mean, of the ratios",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.log(torch.exp(log_p - log_q).mean(dim=0))"),
        fails=["iw-bound-tighter"],
        why="log of a mean of exps: underflows for image-sized log-densities",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_p - log_q, dim=1) - math.log(log_p.shape[1])"),
        fails=["iw-bound-exact", "iw-bound-tighter"],
        why="averaged over the data points instead of the samples",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_q - log_p, dim=0) - math.log(log_p.shape[0])"),
        fails=["iw-bound-exact", "iw-bound-tighter"],
        why="ratio upside down (q/p)",
    ),
]
