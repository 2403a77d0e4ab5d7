"""Typical wrong answers to the exercises of ``tutorials/05_dequantization.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake, Variant

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

# --- Wrong answers that pass a single example but break the contract of the exercise (any D and bin width,
# autograd, inputs left alone, the exercise written rather than the library called).
MISTAKES += [
    Mistake(
        "bpd",
        BPD.format(ret="-log_density / (num_dims * math.log(2.0)) + 8"),
        fails=["bpd-uniform", "bpd-library"],
        why="bin width hard-coded to 1/256 (+8 bits)",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="-(log_density + 3072 * math.log(bin_width)) / (3072 * math.log(2.0))"),
        fails=["bpd-library"],
        why="number of dimensions hard-coded to one 32x32 RGB image",
    ),
    Mistake(
        "bpd",
        BPD.format(
            ret="torch.tensor([-(lp.item() + num_dims * math.log(bin_width)) / (num_dims * math.log(2.0)) "
            "for lp in log_density])"
        ),
        fails=["bpd-contract"],
        why="computed per sample with .item(): right values, no gradient",
    ),
    Mistake(
        "bpd",
        """def discrete_bits_per_dim(log_density, num_dims, bin_width):
    log_density += num_dims * math.log(bin_width)  # add the bin volume in place
    return -log_density / (num_dims * math.log(2.0))
""",
        fails=["bpd-contract"],
        why="adds the bin volume to the caller's tensor in place",
    ),
    Mistake(
        "bpd",
        BPD.format(ret="nats_to_bits_per_dim(log_density, num_dims) - math.log2(bin_width)"),
        fails=["bpd-uniform", "bpd-library", "bpd-contract"],
        why="calls the library's bits/dim helper",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign="torch.sign(y)", v=V_OK, log_q=LOG_Q_OK),
        fails=["binary-deq-side", "binary-deq-logq"],
        why="sign(y) instead of sign(y - 1/2): y = 0 lands on the threshold",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign=SIGN_OK, v=V_OK, log_q="torch.from_numpy(" + LOG_Q_OK + ").detach().numpy())").replace(
            "torch.from_numpy(gaussian", "torch.from_numpy((gaussian"
        ),
        fails=["binary-deq-contract"],
        why="log q through NumPy: right values, no gradient",
    ),
    Mistake(
        "binary-deq",
        """def binary_dequantize(y, eps, shift, log_scale):
    w = eps.mul_(torch.exp(log_scale)).add_(shift)  # reuse the noise buffer
    v = 0.5 + (2.0 * y - 1.0) * F.softplus(w)
    log_q = gaussian_log_prob((w - shift) * torch.exp(-log_scale)) - log_scale.sum(1) - F.logsigmoid(w).sum(1)
    return v, log_q
""",
        fails=["binary-deq-logq", "binary-deq-contract"],
        why="turns eps into w in place: the caller's noise is overwritten",
    ),
    Mistake(
        "binary-deq",
        """def binary_dequantize(y, eps, shift, log_scale):
    w = shift + torch.exp(log_scale) * eps
    v, log_det = HalfLineSoftplus(0.5)(w, y)
    return v, gaussian_log_prob(eps) - log_scale.sum(dim=1) - log_det
""",
        fails=["binary-deq-side", "binary-deq-logq", "binary-deq-contract"],
        why="calls the library's HalfLineSoftplus for the half-line map",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(
            sign=SIGN_OK, v=V_OK, log_q="gaussian_log_prob(w) - log_scale.sum(dim=1) - F.logsigmoid(w).sum(dim=1)"
        ),
        fails=["binary-deq-logq"],
        why="the base density evaluated at w instead of eps",
    ),
    Mistake(
        "binary-deq",
        BINARY.format(sign=SIGN_OK, v=V_OK, log_q=LOG_Q_OK.replace("sum(dim=1)", "sum()")),
        fails=["binary-deq-logq"],
        why="log-det terms summed over the batch too (every sample gets the batch total)",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_p - log_q, dim=0) - math.log(16)"),
        fails=["iw-bound-exact"],
        why="log S hard-coded to the number of samples of one test",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_p - log_q, dim=0) / log_p.shape[0]"),
        fails=["iw-bound-exact", "iw-bound-tighter"],
        why="divides the log-sum-exp by S instead of averaging the ratios",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="(torch.softmax(log_p - log_q, dim=0) * (log_p - log_q)).sum(dim=0)"),
        fails=["iw-bound-tighter"],
        why="a softmax-weighted mean of the log-ratios (exact for S = 1 and for equal ratios, too large otherwise)",
    ),
    Mistake(
        "iw-bound",
        IW.format(ret="torch.tensor([torch.logsumexp(c, 0).item() - math.log(len(c)) for c in (log_p - log_q).T])"),
        fails=["iw-bound-contract"],
        why="column by column with .item(): right values, no gradient",
    ),
    Mistake(
        "iw-bound",
        """def importance_weighted_bound(log_p, log_q):
    log_p -= log_q  # log-ratios, in place
    return torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])
""",
        fails=["iw-bound-exact", "iw-bound-tighter", "iw-bound-contract"],
        why="turns log_p into the log-ratios in place",
    ),
    Mistake(
        "iw-bound",
        """def importance_weighted_bound(log_p, log_q):
    replay = iter(zip(log_p, log_q))
    return dequantized_log_likelihood(lambda v: v, lambda y, h: next(replay), log_p[0], num_samples=log_p.shape[0])
""",
        fails=["iw-bound-exact", "iw-bound-tighter", "iw-bound-contract"],
        why="replays the samples through the library's dequantized_log_likelihood",
    ),
]

# --- Correct answers written differently from the solution: each must pass every test cell.
CORRECT_VARIANTS = [
    Variant(
        "bpd",
        BPD.format(ret="-log_density / (num_dims * math.log(2)) - math.log2(bin_width)"),
        why="log2 of the bin width instead of ln / ln 2",
    ),
    Variant(
        "bpd",
        BPD.format(ret="-(log_density / math.log(2.0) + num_dims * torch.log2(torch.tensor(bin_width))) / num_dims"),
        why="torch.log2 of a float32 tensor of the bin width",
    ),
    Variant(
        "bpd",
        BPD.format(ret="-(log_density.double() / num_dims + np.log(bin_width)) / np.log(2)"),
        why="NumPy constants, per-dimension nats first, result in float64",
    ),
    Variant(
        "binary-deq",
        BINARY.format(
            sign="torch.where(y > 0.5, 1.0, -1.0)",
            v=V_OK,
            log_q="torch.distributions.Normal(0.0, 1.0).log_prob(eps).sum(1) - log_scale.sum(1) "
            "- torch.log(torch.sigmoid(w)).sum(1)",
        ),
        why="torch.where for the sign, torch.distributions for N(eps), log(sigmoid)",
    ),
    Variant(
        "binary-deq",
        """def binary_dequantize(y, eps, shift, log_scale):
    w = shift + log_scale.exp() * eps
    v = torch.where(y == 1, 0.5 + F.softplus(w), 0.5 - F.softplus(w))
    log_det = log_scale - F.softplus(-w)  # log|dv/d eps| per element
    log_n = -0.5 * eps**2 - 0.5 * math.log(2 * math.pi)
    return v, (log_n - log_det).sum(dim=-1)
""",
        why="one sum at the end, log sigmoid(w) = -softplus(-w), N(eps) written out",
    ),
    Variant(
        "binary-deq",
        """def binary_dequantize(y, eps, shift, log_scale):
    y, eps, shift, log_scale = y.double(), eps.double(), shift.double(), log_scale.double()
    w = shift + torch.exp(log_scale) * eps
    v = 0.5 + (2 * y - 1) * F.softplus(w)
    return v, gaussian_log_prob(eps) - (log_scale + F.logsigmoid(w)).sum(1)
""",
        why="computed (and returned) in float64",
    ),
    Variant(
        "iw-bound",
        """def importance_weighted_bound(log_p, log_q):
    log_w = log_p - log_q
    m = log_w.max(dim=0, keepdim=True).values
    return (m + torch.log(torch.exp(log_w - m).mean(dim=0, keepdim=True))).squeeze(0)
""",
        why="log-mean-exp written out with the max shift",
    ),
    Variant(
        "iw-bound",
        IW.format(ret="torch.logsumexp(log_p - log_q, 0) - torch.log(torch.tensor(log_p.shape[0]))"),
        why="log S from an integer tensor",
    ),
    Variant(
        "iw-bound",
        IW.format(ret="torch.logsumexp((log_p - log_q).double(), dim=0) - np.log(len(log_p))"),
        why="in float64 with a NumPy constant",
    ),
]
