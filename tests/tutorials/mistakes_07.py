"""Typical wrong answers to the exercises of ``tutorials/07_vessel_segmentation.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

WB = """def weighted_bernoulli_log_prob(y, logits, beta):
    log_p1, log_p0 = {logs}
    w1, w0 = {weights}
    log_numerator = w1 * y * log_p1 + w0 * (1 - y) * log_p0
    log_normaliser = {norm}
    return {ret}
"""
LOGS_OK = "F.logsigmoid(logits), F.logsigmoid(-logits)"
WEIGHTS_OK = "2 * beta, 2 * (1 - beta)"
NORM_OK = "torch.logaddexp(w1 * log_p1, w0 * log_p0)"
RET_OK = "log_numerator - log_normaliser"

SOFT = """def soft_map_from_flow_samples(v):
    return {ret}
"""

MAXF = """def max_f_from_pr(precision, recall):
    {body}
"""
GUARDED = """denom = precision + recall
    f = np.where(denom > 0, {f} / np.where(denom > 0, denom, 1.0), 0.0)
    return float({pick})"""

MISTAKES = [
    # --- Exercise 1: the normalised weighted Bernoulli (eq. 9)
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm="0.0", ret=RET_OK),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="forgotten normaliser: the weighted cross-entropy is not a distribution",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm="torch.logaddexp(log_p1, log_p0)", ret=RET_OK),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="normaliser without the weights (it is then always 1)",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights="2 * (1 - beta), 2 * beta", norm=NORM_OK, ret=RET_OK),
        fails=["weighted-bernoulli-values"],
        why="class weights swapped: beta belongs to the vessels (y = 1)",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs="F.logsigmoid(-logits), F.logsigmoid(logits)", weights=WEIGHTS_OK, norm=NORM_OK, ret=RET_OK),
        fails=["weighted-bernoulli-values"],
        why="log y_hat and log(1 - y_hat) swapped",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm=NORM_OK, ret="log_numerator + log_normaliser"),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="log-normaliser added instead of subtracted",
    ),
    # --- Exercise 2: binary samples and their mean
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0).float().mean(dim=0)"),
        fails=["soft-map-check"],
        why="thresholded at 0 as if v were a logit",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="v.mean(dim=0)"),
        fails=["soft-map-check"],
        why="averaged the continuous samples instead of the binary maps",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="v.clamp(0, 1).mean(dim=0)"),
        fails=["soft-map-check"],
        why="clipped v to [0, 1] instead of thresholding it",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0.5).float().mean(dim=1)"),
        fails=["soft-map-check"],
        why="averaged over the batch instead of the samples",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0.5).float().sum(dim=0)"),
        fails=["soft-map-check"],
        why="summed instead of averaged: not in [0, 1]",
    ),
    # --- Exercise 3: max F-score
    Mistake(
        "max-f",
        MAXF.format(body="return float(((precision + recall) / 2).max())"),
        fails=["max-f-check"],
        why="arithmetic mean instead of the harmonic mean",
    ),
    Mistake(
        "max-f",
        MAXF.format(body="return float((2 * precision * recall / (precision + recall)).max())"),
        fails=["max-f-check"],
        why="no guard for P + R = 0: nan",
    ),
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="2 * precision * recall", pick="f[-1]")),
        fails=["max-f-check"],
        why="F at the last threshold instead of the maximum",
    ),
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="precision * recall", pick="f.max()")),
        fails=["max-f-check"],
        why="forgotten factor 2",
    ),
]
