"""Typical wrong answers to the exercises of ``tutorials/01_change_of_variables.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

FORWARD = """def affine_forward(y, shift, log_scale):
    z = {z}
    logdet = {logdet}
    return z, logdet
"""
LOG_PROB = """def flow_log_prob(flow, y):
    z, logdet = flow(y)
    log_pz = {log_pz}
    return {ret}
"""
INVERSE = """def affine_inverse(z, shift, log_scale):
    return {y}
"""
Z_OK = "(y - shift) * torch.exp(-log_scale)"
PZ_OK = "(-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(dim=1)"

MISTAKES = [
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="torch.zeros(y.shape[0])"),
        fails=["affine-forward-logdet"],
        why="forgotten log-det term",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="log_scale.sum().expand(y.shape[0])"),
        fails=["affine-forward-logdet"],
        why="sign error in the log-det (+sum s for a map that divides by exp(s))",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.sum()"),
        fails=["affine-forward-logdet"],
        why="log-det as one scalar instead of one value per sample",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.expand_as(y)"),
        fails=["affine-forward-logdet"],
        why="log-det per dimension [B, D], not summed over the features",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="(-log_scale.sum() * y.shape[0]).expand(y.shape[0])"),
        fails=["affine-forward-logdet"],
        why="log-det summed over the batch as well",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z="(y - shift) * torch.exp(log_scale)", logdet="(-log_scale.sum()).expand(y.shape[0])"),
        fails=["affine-forward-z"],
        why="multiplies by exp(s) instead of exp(-s)",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z="y * torch.exp(-log_scale) - shift", logdet="(-log_scale.sum()).expand(y.shape[0])"),
        fails=["affine-forward-z"],
        why="shift applied after the scaling",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz=PZ_OK, ret="log_pz"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="forgotten log-det term",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz=PZ_OK, ret="log_pz - logdet"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="sign error: subtracts the log-det",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="(-0.5 * y**2 - 0.5 * math.log(2 * math.pi)).sum(dim=1)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="the prior evaluated at the data y instead of the latent z",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="(-0.5 * z**2).sum(dim=1)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="forgotten Gaussian normalising constant",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="-0.5 * z**2 - 0.5 * math.log(2 * math.pi)", ret="log_pz + logdet[:, None]"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="prior not summed over the dimensions",
    ),
    Mistake(
        "affine-inverse",
        INVERSE.format(y="z * torch.exp(-log_scale) + shift"),
        fails=["affine-inverse-roundtrip"],
        why="divides by the scale again instead of undoing it",
    ),
    Mistake(
        "affine-inverse",
        INVERSE.format(y="(z + shift) * torch.exp(log_scale)"),
        fails=["affine-inverse-roundtrip"],
        why="steps undone in the wrong order",
    ),
    Mistake(
        "affine-inverse",
        INVERSE.format(y="z * torch.exp(log_scale) - shift"),
        fails=["affine-inverse-roundtrip"],
        why="shift subtracted instead of added back",
    ),
]
