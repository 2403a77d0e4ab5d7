"""Typical wrong answers to the exercises of ``tutorials/04_conditional_flows.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake, Variant

PRIOR = """def conditional_prior_log_prob(z, mean, log_std):
    log_p = {log_p}
    return {ret}
"""
PRIOR_OK = "-0.5 * math.log(2 * math.pi) - log_std - 0.5 * ((z - mean) * torch.exp(-log_std)) ** 2"

COUPLING = """def conditional_coupling(y, h, net):
    d = y.shape[1] // 2
    y_a, y_b = y[:, :d], y[:, d:]
    log_s, t = net({net_in})
    z_b = {z_b}
    return {ret}
"""
Z_B_OK = "torch.exp(log_s) * y_b + t"
RET_OK = "torch.cat([y_a, z_b], dim=1), log_s.sum(dim=1)"

SPLIT = """def split_prior_forward(z, h, net):
    keep = z.shape[1] - z.shape[1] // 2
    z0, z1 = {halves}
    mean, log_std = net({net_in})
    eps = {eps}
    return {ret}
"""
HALVES_OK = "z[:, :keep], z[:, keep:]"
EPS_OK = "(z1 - mean) * torch.exp(-log_std)"
SPLIT_RET_OK = "torch.cat([z0, eps], dim=1), -log_std.sum(dim=1)"
SPLIT_IN_OK = "torch.cat([z0, h], dim=1)"

MISTAKES = [
    # --- Exercise 1: the conditional prior's log-density
    Mistake(
        "prior-logprob",
        PRIOR.format(
            log_p="-0.5 * math.log(2 * math.pi) - 0.5 * ((z - mean) * torch.exp(-log_std)) ** 2", ret="log_p.sum(dim=1)"
        ),
        fails=["prior-logprob-scale"],
        why="forgotten -log sigma (volume) term",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(
            log_p="-0.5 * math.log(2 * math.pi) + log_std - 0.5 * ((z - mean) * torch.exp(-log_std)) ** 2",
            ret="log_p.sum(dim=1)",
        ),
        fails=["prior-logprob-scale"],
        why="sign error on the log sigma term",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(log_p="-log_std - 0.5 * ((z - mean) * torch.exp(-log_std)) ** 2", ret="log_p.sum(dim=1)"),
        fails=["prior-logprob-basics", "prior-logprob-scale"],
        why="forgotten Gaussian normalising constant -0.5 log(2 pi)",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(log_p=PRIOR_OK, ret="log_p.sum(dim=0)"),
        fails=["prior-logprob-basics", "prior-logprob-scale"],
        why="summed over the batch instead of the features",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(log_p=PRIOR_OK, ret="log_p"),
        fails=["prior-logprob-basics", "prior-logprob-scale"],
        why="not summed over the features ([B, D] instead of [B])",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(
            log_p="-0.5 * math.log(2 * math.pi) - log_std - 0.5 * (z - mean) ** 2 * torch.exp(-log_std)",
            ret="log_p.sum(dim=1)",
        ),
        fails=["prior-logprob-scale"],
        why="squared distance divided by sigma instead of sigma**2",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(
            log_p="-0.5 * math.log(2 * math.pi) - torch.log(log_std) - 0.5 * ((z - mean) / log_std) ** 2",
            ret="log_p.sum(dim=1)",
        ),
        fails=["prior-logprob-basics", "prior-logprob-scale", "prior-logprob-contract"],
        why="log_std used as if it were sigma (NaN for negative log_std)",
    ),
    # --- Exercise 2: the conditional affine coupling
    Mistake(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    d = y.shape[1] // 2
    y_a, y_b = y[:, :d], y[:, d:]
    log_s, t = net(torch.cat([y_b, h], dim=1))
    z_a = torch.exp(log_s) * y_a + t
    return torch.cat([z_a, y_b], dim=1), log_s.sum(dim=1)
""",
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="the wrong half transformed (y_a changed, y_b passed through, but z keeps y_a's position)",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_b, h], dim=1)", z_b=Z_B_OK, ret=RET_OK),
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="the network sees the half it transforms (y_b): the Jacobian is no longer triangular",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="y_a", z_b=Z_B_OK, ret=RET_OK),
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="h not concatenated to the network input",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(
            net_in="torch.cat([y_a, h], dim=1)", z_b=Z_B_OK, ret="torch.cat([y_a, z_b], dim=1), -log_s.sum(dim=1)"
        ),
        fails=["cond-coupling-logdet"],
        why="sign error in the log-det",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(
            net_in="torch.cat([y_a, h], dim=1)", z_b=Z_B_OK, ret="torch.cat([y_a, z_b], dim=1), torch.zeros(y.shape[0])"
        ),
        fails=["cond-coupling-logdet", "cond-coupling-contract"],
        why="forgotten log-det term (a constant: nothing to differentiate)",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_a, h], dim=1)", z_b=Z_B_OK, ret="torch.cat([y_a, z_b], dim=1), log_s"),
        fails=["cond-coupling-structure", "cond-coupling-logdet"],
        why="log-det not summed over the features",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_a, h], dim=1)", z_b="torch.exp(log_s) * (y_b + t)", ret=RET_OK),
        fails=["cond-coupling-logdet"],
        why="shift applied before the scale (a valid bijection, but not the layer asked for)",
    ),
    # --- Exercise 3: the conditional split prior
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret="torch.cat([z0, eps], dim=1), log_std.sum(dim=1)"
        ),
        fails=["split-prior-density", "split-prior-library"],
        why="sign error in the log-det (+sum log sigma)",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret="torch.cat([z0, eps], dim=1), torch.zeros(z.shape[0])"
        ),
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="forgotten log-det term (a constant: nothing to differentiate)",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves=HALVES_OK, net_in=SPLIT_IN_OK, eps="(z1 - mean) * torch.exp(log_std)", ret=SPLIT_RET_OK),
        fails=["split-prior-density", "split-prior-library"],
        why="multiplies by sigma instead of dividing",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves=HALVES_OK, net_in="z0", eps=EPS_OK, ret=SPLIT_RET_OK),
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="h not given to the split prior's network",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves="z[:, keep:], z[:, :keep]", net_in=SPLIT_IN_OK, eps=EPS_OK, ret=SPLIT_RET_OK),
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="the halves swapped: conditions on the factored-out half",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret="torch.cat([eps, z0], dim=1), -log_std.sum(dim=1)"
        ),
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="output halves in the wrong order",
    ),
]

# --- Wrong answers that pass a single example but break the contract of the exercise (any D, autograd, inputs
# left alone, the exercise written rather than the library called).
MISTAKES += [
    Mistake(
        "prior-logprob",
        PRIOR.format(log_p=PRIOR_OK, ret="torch.tensor(log_p.sum(dim=1).detach().numpy())"),
        fails=["prior-logprob-contract"],
        why="right values through NumPy: the gradient is cut",
    ),
    Mistake(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    return gaussian_log_prob(z, mean, log_std)
""",
        fails=["prior-logprob-basics", "prior-logprob-scale", "prior-logprob-contract"],
        why="calls the library's gaussian_log_prob instead of writing the density",
    ),
    Mistake(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    z -= mean  # centre in place
    log_p = -0.5 * math.log(2 * math.pi) - log_std - 0.5 * (z * torch.exp(-log_std)) ** 2
    return log_p.sum(dim=1)
""",
        fails=["prior-logprob-contract"],
        why="centres z in place: the caller's tensor is changed",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(
            log_p="-0.5 * math.log(2 * math.pi) - 0.5 * log_std - 0.5 * (z - mean) ** 2 * torch.exp(-log_std)",
            ret="log_p.sum(dim=1)",
        ),
        fails=["prior-logprob-scale"],
        why="log_std read as the log-variance",
    ),
    Mistake(
        "prior-logprob",
        PRIOR.format(log_p=PRIOR_OK, ret="log_p.mean(dim=1)"),
        fails=["prior-logprob-basics", "prior-logprob-scale"],
        why="averaged over the features instead of summed",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_a, h], dim=1)", z_b=Z_B_OK, ret=RET_OK).replace(
            "d = y.shape[1] // 2", "d = (y.shape[1] + 1) // 2"
        ),
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="keeps ceil(D/2) features instead of floor(D/2) (identical for even D)",
    ),
    Mistake(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    y_a, y_b = torch.chunk(y, 2, dim=1)
    log_s, t = net(torch.cat([y_a, h], dim=1))
    return torch.cat([y_a, torch.exp(log_s) * y_b + t], dim=1), log_s.sum(dim=1)
""",
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="torch.chunk splits off ceil(D/2) features for odd D",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(
            net_in="torch.cat([y_a, h], dim=1)",
            z_b=Z_B_OK,
            ret="torch.cat([y_a, z_b], dim=1), torch.tensor([row.sum().item() for row in log_s])",
        ),
        fails=["cond-coupling-contract"],
        why="log-det built from .item(): right values, no gradient",
    ),
    Mistake(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    d = y.shape[1] // 2
    log_s, t = net(torch.cat([y[:, :d], h], dim=1))
    y[:, d:] = torch.exp(log_s) * y[:, d:] + t  # transform in place
    return y, log_s.sum(dim=1)
""",
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="writes z_b into the input tensor in place",
    ),
    Mistake(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    layer = AffineCoupling(y.shape[1], h.shape[1], net="mlp")
    layer._scale_shift = lambda y_a, h_: net(torch.cat([y_a, h_], dim=1))
    return layer(y, h)
""",
        fails=["cond-coupling-structure", "cond-coupling-logdet", "cond-coupling-contract"],
        why="calls the library's AffineCoupling with the given network",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_a, h], dim=1)", z_b="log_s * y_b + t", ret=RET_OK),
        fails=["cond-coupling-logdet"],
        why="scales by log_s instead of s",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret=SPLIT_RET_OK).replace(
            "keep = z.shape[1] - z.shape[1] // 2", "keep = z.shape[1] // 2"
        ),
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="keeps floor(D/2) features as z0 instead of D - D//2 (identical for even D)",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK,
            net_in=SPLIT_IN_OK,
            eps=EPS_OK,
            ret="torch.cat([z0, eps], dim=1), torch.from_numpy(-log_std.sum(dim=1).detach().numpy())",
        ),
        fails=["split-prior-contract"],
        why="log-det through NumPy: right values, no gradient",
    ),
    Mistake(
        "split-prior",
        """def split_prior_forward(z, h, net):
    layer = SplitPrior(z.shape[1], h.shape[1], net_factory=lambda i, o: torch.nn.Identity())
    layer.params = lambda z0, h_: net(torch.cat([z0, h_], dim=1))
    return layer(z, h)
""",
        fails=["split-prior-density", "split-prior-library", "split-prior-contract"],
        why="calls the library's SplitPrior with the given network",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves=HALVES_OK, net_in=SPLIT_IN_OK, eps="(z1 - mean) / log_std", ret=SPLIT_RET_OK),
        fails=["split-prior-density", "split-prior-library"],
        why="divides by log_std instead of sigma",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret="torch.cat([z0, eps], dim=1), -log_std.sum()"
        ),
        fails=["split-prior-density", "split-prior-library"],
        why="log-det summed over the batch too (a scalar)",
    ),
]

# --- Correct answers written differently from the solution: each must pass every test cell.
CORRECT_VARIANTS = [
    Variant(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    return torch.distributions.Normal(mean, torch.exp(log_std)).log_prob(z).sum(dim=-1)
""",
        why="torch.distributions.Normal instead of the written-out Gaussian",
    ),
    Variant(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    var = torch.exp(2 * log_std)
    return -0.5 * torch.sum(torch.log(2 * torch.pi * var) + (z - mean) ** 2 / var, dim=1)
""",
        why="through the variance, constants inside the log",
    ),
    Variant(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    z, mean, log_std = z.double(), mean.double(), log_std.double()
    log_2pi = torch.log(torch.tensor(2 * math.pi, dtype=torch.float64))
    return (-0.5 * log_2pi - log_std - 0.5 * ((z - mean) / torch.exp(log_std)) ** 2).sum(1)
""",
        why="computed (and returned) in float64",
    ),
    Variant(
        "prior-logprob",
        """def conditional_prior_log_prob(z, mean, log_std):
    d = z.shape[1]
    quad = (((z - mean) * torch.exp(-log_std)) ** 2).sum(dim=1)
    return -0.5 * d * np.log(2 * np.pi) - log_std.sum(dim=1) - 0.5 * quad
""",
        why="sums first, NumPy constants",
    ),
    Variant(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    d = y.shape[1] // 2
    y_a, y_b = torch.split(y, [d, y.shape[1] - d], dim=1)
    log_s, t = net(torch.cat((y_a, h), 1))
    z = y.clone()
    z[:, d:] = y_b * log_s.exp() + t  # writes into a copy, not into y
    return z, torch.sum(log_s, dim=-1)
""",
        why="torch.split, result written into a clone",
    ),
    Variant(
        "cond-coupling",
        """def conditional_coupling(y, h, net):
    d = math.floor(y.shape[1] / 2)
    y_a, y_b = y.narrow(1, 0, d), y.narrow(1, d, y.shape[1] - d)
    log_s, t = net(torch.hstack([y_a, h]))
    return torch.hstack([y_a, torch.exp(log_s) * y_b + t]), log_s.sum(1)
""",
        why="math.floor, narrow and hstack",
    ),
    Variant(
        "split-prior",
        """def split_prior_forward(z, h, net):
    keep = (z.shape[1] + 1) // 2
    z0, z1 = torch.split(z, [keep, z.shape[1] - keep], dim=1)
    mean, log_std = net(torch.cat([z0, h], 1))
    eps = (z1 - mean) / torch.exp(log_std)
    return torch.cat([z0, eps], 1), -torch.sum(log_std, dim=1)
""",
        why="(D + 1) // 2, division by exp(log_std)",
    ),
    Variant(
        "split-prior",
        """def split_prior_forward(z, h, net):
    keep = math.ceil(z.shape[1] / 2)
    z0 = z[:, :keep]
    mean, log_std = net(torch.cat([z0, h], dim=1))
    sigma = log_std.exp()
    return torch.cat([z0, (z[:, keep:] - mean) / sigma], dim=1), -torch.log(sigma).sum(dim=1)
""",
        why="math.ceil, log-det from log(sigma)",
    ),
]
