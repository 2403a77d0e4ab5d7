"""Typical wrong answers to the exercises of ``tutorials/04_conditional_flows.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

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
        fails=["prior-logprob-basics", "prior-logprob-scale"],
        why="log_std used as if it were sigma",
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
        fails=["cond-coupling-structure", "cond-coupling-logdet"],
        why="the wrong half transformed (y_a changed, y_b passed through, but z keeps y_a's position)",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="torch.cat([y_b, h], dim=1)", z_b=Z_B_OK, ret=RET_OK),
        fails=["cond-coupling-logdet"],
        why="the network sees the half it transforms (y_b): the Jacobian is no longer triangular",
    ),
    Mistake(
        "cond-coupling",
        COUPLING.format(net_in="y_a", z_b=Z_B_OK, ret=RET_OK),
        fails=["cond-coupling-structure", "cond-coupling-logdet"],
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
        fails=["cond-coupling-logdet"],
        why="forgotten log-det term",
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
        fails=["split-prior-density", "split-prior-library"],
        why="forgotten log-det term",
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
        fails=["split-prior-density", "split-prior-library"],
        why="h not given to the split prior's network",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(halves="z[:, keep:], z[:, :keep]", net_in=SPLIT_IN_OK, eps=EPS_OK, ret=SPLIT_RET_OK),
        fails=["split-prior-density", "split-prior-library"],
        why="the halves swapped: conditions on the factored-out half",
    ),
    Mistake(
        "split-prior",
        SPLIT.format(
            halves=HALVES_OK, net_in=SPLIT_IN_OK, eps=EPS_OK, ret="torch.cat([eps, z0], dim=1), -log_std.sum(dim=1)"
        ),
        fails=["split-prior-density", "split-prior-library"],
        why="output halves in the wrong order",
    ),
]
