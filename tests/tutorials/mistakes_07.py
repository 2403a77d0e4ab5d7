"""Typical wrong answers to the exercises of ``tutorials/07_vessel_segmentation.ipynb``, and correct variants.

Each mistake must fail exactly the test cells listed in ``fails``, and each correct variant in
``CORRECT_VARIANTS`` must pass every test cell (see ``test_grading.py``).
"""

from harness import Mistake, Variant

# --- Exercise 1: the factorized floor from annotation draws -------------------------------------------
FLOOR = """def factorized_floor(draws, fov):
    p = {marginal}
    q = 1.0 - p
    bits = {bits}
    total = float(bits.sum())
    return {ret}
"""
MARGINAL_OK = "draws.double().mean(dim=0)"
BITS_OK = "-(torch.where(p > 0, p * torch.log2(p), 0.0) + torch.where(q > 0, q * torch.log2(q), 0.0))"
RET_OK = "total / p.numel(), total / int(fov.sum())"

# --- Exercise 2: eq. (9) with its normaliser -------------------------------------------------------------
WB = """def weighted_bernoulli_log_prob(y, logits, beta):
    log_p1, log_p0 = {logs}
    w1, w0 = {weights}
    log_numerator = w1 * y * log_p1 + w0 * (1 - y) * log_p0
    log_normaliser = {norm}
    return {ret}
"""
LOGS_OK = "F.logsigmoid(logits), F.logsigmoid(-logits)"
WEIGHTS_OK = "beta, 1 - beta"
NORM_OK = "torch.logaddexp(w1 * log_p1, w0 * log_p0)"
WB_RET_OK = "log_numerator - log_normaliser"

# --- Exercise 3: soft map ---------------------------------------------------------------------------------
SOFT = """def soft_map_from_flow_samples(v):
    return {ret}
"""

# --- Exercise 4: max F ------------------------------------------------------------------------------------
MAXF = """def max_f_from_pr(precision, recall):
    {body}
"""
GUARDED = """p, r = np.asarray(precision, np.float64), np.asarray(recall, np.float64)
    if p.size == 0:
        return 0.0
    denom = p + r
    f = np.where(denom > 0, {f} / np.where(denom > 0, denom, 1.0), 0.0)
    return float({pick})"""

MISTAKES = [
    # --- Exercise 1
    Mistake(
        "factorized-floor",
        FLOOR.format(
            marginal=MARGINAL_OK,
            bits="-(torch.where(p > 0, p * torch.log(p), 0.0) + torch.where(q > 0, q * torch.log(q), 0.0))",
            ret=RET_OK,
        ),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="entropy in nats instead of bits",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal=MARGINAL_OK, bits=BITS_OK, ret="total / int(fov.sum()), total / p.numel()"),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="per image pixel and per FOV pixel swapped",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal=MARGINAL_OK, bits=BITS_OK, ret="total / int(fov.sum()), total / int(fov.sum())"),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="divides by the FOV pixel count where the per-image-pixel value is asked",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal=MARGINAL_OK, bits=BITS_OK, ret="total / p.numel(), total / p.numel()"),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="divides by the image pixel count where the per-FOV-pixel value is asked",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal=MARGINAL_OK, bits="-(p * torch.log2(p) + q * torch.log2(q))", ret=RET_OK),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="no 0 log 0 = 0 guard: certain pixels give nan",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal=MARGINAL_OK, bits="-torch.where(p > 0, p * torch.log2(p), 0.0)", ret=RET_OK),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="only the -p log p half of the binary entropy",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(
            marginal=MARGINAL_OK, bits=BITS_OK, ret="total / draws.numel(), total / (draws.shape[0] * int(fov.sum()))"
        ),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="divides by the draws as well as the pixels",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal="draws.double().mean(dim=1)", bits=BITS_OK, ret=RET_OK),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="marginal averaged over the wrong axis (image rows instead of draws)",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal="draws.double().mean().expand(draws.shape[1:])", bits=BITS_OK, ret=RET_OK),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="one marginal for the whole image (the vessel fraction) instead of one per pixel",
    ),
    Mistake(
        "factorized-floor",
        FLOOR.format(marginal="draws.double().mean(dim=0).clamp(1e-3, 1 - 1e-3)", bits=BITS_OK, ret=RET_OK),
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="marginals clamped far from 0 and 1: every certain pixel is charged bits",
    ),
    Mistake(
        "factorized-floor",
        """def factorized_floor(draws, fov):
    draws.clamp_(1e-6, 1 - 1e-6)  # keeps the logs finite, but edits the caller's tensor
    p = draws.double().mean(dim=0)
    q = 1.0 - p
    bits = -(p * torch.log2(p) + q * torch.log2(q))
    total = float(bits.sum())
    return total / p.numel(), total / int(fov.sum())
""",
        fails=["factorized-floor-closed-form", "factorized-floor-retina"],
        why="overwrites the caller's draws in place",
    ),
    # --- Exercise 2
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm="0.0", ret=WB_RET_OK),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="eq. (9) without its normaliser: the weighted cross-entropy is not a distribution",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights="2 * beta, 2 * (1 - beta)", norm=NORM_OK, ret=WB_RET_OK),
        fails=["weighted-bernoulli-values"],
        why="exponents 2 beta and 2 (1 - beta) instead of eq. (9)'s printed beta and 1 - beta",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm="torch.logaddexp(log_p1, log_p0)", ret=WB_RET_OK),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="normaliser without the exponents (it is then always 1)",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights="1 - beta, beta", norm=NORM_OK, ret=WB_RET_OK),
        fails=["weighted-bernoulli-values"],
        why="class weights swapped: beta belongs to the vessels (y = 1)",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs="F.logsigmoid(-logits), F.logsigmoid(logits)", weights=WEIGHTS_OK, norm=NORM_OK, ret=WB_RET_OK),
        fails=["weighted-bernoulli-values"],
        why="log p and log(1 - p) swapped",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(logs=LOGS_OK, weights=WEIGHTS_OK, norm=NORM_OK, ret="log_numerator + log_normaliser"),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="log-normaliser added instead of subtracted",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(
            logs=LOGS_OK,
            weights=WEIGHTS_OK,
            norm="torch.log(torch.exp(w1 * log_p1) + torch.exp(w0 * log_p0))",
            ret="(log_numerator - log_normaliser).detach()",
        ),
        fails=["weighted-bernoulli-values"],
        why="result detached from the graph: no gradient for training",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(
            logs=LOGS_OK,
            weights=WEIGHTS_OK,
            norm="torch.logaddexp(w1 * y * log_p1, w0 * (1 - y) * log_p0)",
            ret=WB_RET_OK,
        ),
        fails=["weighted-bernoulli-normalised", "weighted-bernoulli-values"],
        why="normaliser evaluated at the observed y instead of summed over both values",
    ),
    Mistake(
        "weighted-bernoulli",
        WB.format(
            logs="torch.sigmoid(logits), 1 - torch.sigmoid(logits)", weights=WEIGHTS_OK, norm=NORM_OK, ret=WB_RET_OK
        ),
        fails=["weighted-bernoulli-values"],
        why="probabilities used where their logs belong",
    ),
    # --- Exercise 3
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
        why="mean over the wrong axis (the batch instead of the samples)",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0.5).float().sum(dim=0)"),
        fails=["soft-map-check"],
        why="summed instead of averaged: not in [0, 1]",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0.5).float().mean(dim=0).transpose(-1, -2)"),
        fails=["soft-map-check"],
        why="soft map with H and W transposed",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="torch.sigmoid(v).mean(dim=0)"),
        fails=["soft-map-check"],
        why="a sigmoid of v as if v were a logit",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="v.masked_fill_(v <= 0.5, 0.0).masked_fill_(v > 0.5, 1.0).mean(dim=0)"),
        fails=["soft-map-check"],
        why="thresholds v in place, overwriting the caller's samples",
    ),
    Mistake(
        "soft-map",
        SOFT.format(ret="(v > 0.5).float().mean(dim=0).flip(-1)"),
        fails=["soft-map-check"],
        why="soft map mirrored left to right",
    ),
    # --- Exercise 4
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="(p + r) * (p + r) / 2", pick="f.max()")),
        fails=["max-f-check"],
        why="arithmetic mean (P + R)/2 instead of the harmonic mean",
    ),
    Mistake(
        "max-f",
        MAXF.format(body="return float((2 * precision * recall / (precision + recall)).max())"),
        fails=["max-f-check"],
        why="no guard for P + R = 0 (nan), and an empty curve crashes",
    ),
    Mistake(
        "max-f",
        MAXF.format(
            body="if len(precision) == 0:\n        return 0.0\n"
            "    return float(np.max(2 * precision * recall / (precision + recall)))"
        ),
        fails=["max-f-check"],
        why="empty curve handled but no guard for P + R = 0",
    ),
    Mistake(
        "max-f",
        MAXF.format(
            body="s = precision + recall\n"
            "    f = np.where(s > 0, 2 * precision * recall / np.maximum(s, 1e-12), 0)\n"
            "    return float(f.max())"
        ),
        fails=["max-f-check"],
        why="P + R = 0 guarded but an empty curve crashes",
    ),
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="2 * p * r", pick="f[-1]")),
        fails=["max-f-check"],
        why="F at the last threshold instead of the maximum",
    ),
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="p * r", pick="f.max()")),
        fails=["max-f-check"],
        why="forgotten factor 2",
    ),
    Mistake(
        "max-f",
        MAXF.format(
            body="p, r = np.max(precision, initial=0.0), np.max(recall, initial=0.0)\n"
            "    return 0.0 if p + r == 0 else float(2 * p * r / (p + r))"
        ),
        fails=["max-f-check"],
        why="best precision and best recall combined, though they come from different thresholds",
    ),
    Mistake(
        "max-f",
        MAXF.format(body=GUARDED.format(f="2 * p * r", pick="np.argmax(f)")),
        fails=["max-f-check"],
        why="returns the index of the best threshold instead of its F-score",
    ),
    Mistake(
        "max-f",
        MAXF.format(
            body="p, r = float(np.mean(precision)) if len(precision) else 0.0, "
            "float(np.mean(recall)) if len(recall) else 0.0\n"
            "    return 0.0 if p + r == 0 else 2 * p * r / (p + r)"
        ),
        fails=["max-f-check"],
        why="F of the mean precision and mean recall instead of the best point",
    ),
    Mistake(
        "max-f",
        MAXF.format(
            body="if precision.size == 0:\n        return 0.0\n"
            "    denom = precision + recall\n"
            "    precision *= 2 * recall  # precision now holds 2PR\n"
            "    f = np.where(denom > 0, precision / np.where(denom > 0, denom, 1.0), 0.0)\n"
            "    return float(f.max())"
        ),
        fails=["max-f-check"],
        why="computes F in place in the caller's precision array",
    ),
]

CORRECT_VARIANTS = [
    # --- Exercise 1
    Variant(
        "factorized-floor",
        FLOOR.format(
            marginal="draws.mean(dim=0)",
            bits="(torch.special.entr(p) + torch.special.entr(q)) / math.log(2)",
            ret=RET_OK,
        ),
        why="torch.special.entr in the input's dtype (float32 when the draws are float32), nats converted to bits",
    ),
    Variant(
        "factorized-floor",
        FLOOR.format(
            marginal="draws.double().mean(dim=0)",
            bits="-(torch.xlogy(p, p) + torch.xlogy(q, q)) / math.log(2)",
            ret="total / (draws.shape[1] * draws.shape[2]), total / fov.sum().item()",
        ),
        why="xlogy; pixel counts from the shape and fov.sum().item()",
    ),
    Variant(
        "factorized-floor",
        FLOOR.format(
            marginal="draws.double().mean(dim=0).clamp(1e-12, 1 - 1e-12)",
            bits="-(p * torch.log2(p) + q * torch.log2(q))",
            ret=RET_OK,
        ),
        why="marginals clamped a hair away from 0 and 1 instead of a 0 log 0 guard",
    ),
    Variant(
        "factorized-floor",
        """def factorized_floor(draws, fov):
    d = draws.numpy().astype(np.float64)
    p = d.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    total = float(np.nansum(h))
    return total / p.size, total / fov.numpy().sum()
""",
        why="in numpy, nan from 0 log 0 dropped with nansum, numpy scalars returned",
    ),
    Variant(
        "factorized-floor",
        """def factorized_floor(draws, fov):
    p = draws.double().mean(dim=0)
    log_on = torch.log2(p.clamp_min(1e-300))
    log_off = torch.log2((1 - p).clamp_min(1e-300))
    code = torch.where(draws > 0.5, log_on, log_off)  # [N, H, W]
    total = float(-code.sum() / draws.shape[0])
    return total / p.numel(), total / int(fov.sum())
""",
        why="average code length of the draws under their own empirical marginals (equals the plug-in entropy)",
    ),
    # --- Exercise 2
    Variant(
        "weighted-bernoulli",
        """def weighted_bernoulli_log_prob(y, logits, beta):
    p = torch.sigmoid(logits)
    numerator = p ** (beta * y) * (1 - p) ** ((1 - beta) * (1 - y))
    normaliser = p**beta + (1 - p) ** (1 - beta)
    return torch.log(numerator / normaliser)
""",
        why="eq. (9) typed as printed, in probability space",
    ),
    Variant(
        "weighted-bernoulli",
        """def weighted_bernoulli_log_prob(y, logits, beta):
    a = beta * F.logsigmoid(logits)
    b = (1 - beta) * F.logsigmoid(-logits)
    return torch.where(y > 0.5, a, b) - torch.logsumexp(torch.stack([a, b]), dim=0)
""",
        why="torch.where on y, logsumexp over a stacked pair",
    ),
    Variant(
        "weighted-bernoulli",
        WB.format(
            logs="torch.log(torch.sigmoid(logits)), torch.log1p(-torch.sigmoid(logits))",
            weights=WEIGHTS_OK,
            norm="torch.log(torch.exp(w1 * log_p1) + torch.exp(w0 * log_p0))",
            ret=WB_RET_OK,
        ),
        why="log of sigmoid and log1p, normaliser without logaddexp",
    ),
    Variant(
        "weighted-bernoulli",
        """def weighted_bernoulli_log_prob(y, logits, beta):
    log_p1, log_p0 = F.logsigmoid(logits), F.logsigmoid(-logits)
    num = beta * y * log_p1 + (1 - beta) * (1 - y) * log_p0
    # log(e^a + e^b) = a + log(1 + e^(b - a)) = a + softplus(b - a)
    a, b = beta * log_p1, (1 - beta) * log_p0
    return num - (a + F.softplus(b - a))
""",
        why="normaliser through softplus",
    ),
    # --- Exercise 3
    Variant("soft-map", SOFT.format(ret="v.gt(0.5).double().mean(0)"), why="float64 output from any input"),
    Variant(
        "soft-map",
        SOFT.format(ret="(v >= 0.5).float().sum(dim=0) / v.shape[0]"),
        why=">= 1/2 (ties have probability 0), sum divided by N",
    ),
    Variant(
        "soft-map",
        SOFT.format(ret="torch.where(v > 0.5, 1.0, 0.0).mean(0)"),
        why="torch.where to binary maps",
    ),
    Variant(
        "soft-map",
        SOFT.format(ret="torch.round(v).clamp(0, 1).mean(0)"),
        why="rounding then clamping (equals thresholding at 1/2 away from the tie)",
    ),
    Variant(
        "soft-map",
        SOFT.format(ret="torch.from_numpy((v.numpy() > 0.5).mean(axis=0))"),
        why="through numpy",
    ),
    # --- Exercise 4
    Variant(
        "max-f",
        MAXF.format(
            body="p = np.asarray(precision, float)\n    r = np.asarray(recall, float)\n"
            "    f = 2 * p * r / (p + r + 1e-12)\n    return float(f.max()) if f.size else 0.0"
        ),
        why="a tiny epsilon in the denominator instead of np.where",
    ),
    Variant(
        "max-f",
        MAXF.format(
            body="best = 0.0\n    for p, r in zip(precision, recall):\n"
            "        if p + r > 0:\n            best = max(best, 2 * p * r / (p + r))\n    return float(best)"
        ),
        why="a Python loop in the inputs' dtype",
    ),
    Variant(
        "max-f",
        MAXF.format(
            body="with np.errstate(divide='ignore', invalid='ignore'):\n"
            "        f = np.nan_to_num(2 * precision * recall / (precision + recall))\n"
            "    return float(np.max(f, initial=0.0))"
        ),
        why="nan_to_num after the division, max with initial=0",
    ),
]
