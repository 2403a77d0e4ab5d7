"""Typical wrong answers to the exercises of ``tutorials/01_change_of_variables.ipynb``.

Each must fail exactly the test cells listed in ``fails``, and each correct variant in
``CORRECT_VARIANTS`` must pass every test cell (see ``test_grading.py``).
"""

from harness import Mistake, Variant

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
        fails=["affine-forward-logdet", "affine-forward-grad"],
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
        fails=["affine-forward-z", "affine-forward-logdet"],
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
    # --- Gradient cut, in-place writes, hard-coded sizes, the library's own layer ---
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="torch.full((y.shape[0],), -log_scale.sum().item())"),
        fails=["affine-forward-grad"],
        why="log-det built with .item(): right values, gradient cut",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="np.full(y.shape[0], -log_scale.detach().numpy().sum())"),
        fails=["affine-forward-logdet", "affine-forward-grad"],
        why="log-det returned as a NumPy array",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.detach().sum().expand(y.shape[0])"),
        fails=["affine-forward-grad"],
        why="log-det detached from the parameters",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="(-log_scale.sum()).expand(5)"),
        fails=["affine-forward-logdet"],
        why="batch size hard-coded to the size of one example",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.sum() * torch.ones(3)"),
        fails=["affine-forward-logdet"],
        why="log-det vector sized by the number of features, not the batch",
    ),
    Mistake(
        "affine-forward",
        """def affine_forward(y, shift, log_scale):
    y -= shift
    y *= torch.exp(-log_scale)
    return y, (-log_scale.sum()).expand(y.shape[0])
""",
        fails=["affine-forward-z", "affine-forward-logdet"],
        why="z computed in place in the caller's y",
    ),
    Mistake(
        "affine-forward",
        """def affine_forward(y, shift, log_scale):
    layer = ElementwiseAffine((y.shape[1],))
    with torch.no_grad():
        layer.shift.copy_(shift)
        layer.log_scale.copy_(log_scale)
    return layer(y)
""",
        fails=["affine-forward-z", "affine-forward-logdet", "affine-forward-grad"],
        why="calls the library's ElementwiseAffine instead of writing the layer",
    ),
    Mistake(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.mean().expand(y.shape[0])"),
        fails=["affine-forward-logdet"],
        why="mean over the features instead of the sum",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="(-0.5 * z**2).sum(dim=1) - 0.5 * math.log(2 * math.pi)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine"],
        why="Gaussian normalising constant counted once, not once per dimension (right only for D = 1)",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="(-0.5 * z**2).sum(dim=1) - math.log(2 * math.pi)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized"],
        why="normalising constant for D = 2 hard-coded",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz=PZ_OK, ret="torch.tensor([v.item() for v in log_pz + logdet])"),
        fails=["flow-log-prob-grad"],
        why="log-density rebuilt from .item() values: gradient cut",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz=PZ_OK, ret="log_pz + logdet.detach()"),
        fails=["flow-log-prob-grad"],
        why="log-det detached: the flow would be trained without its volume term",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="gaussian_log_prob(z)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine", "flow-log-prob-normalized", "flow-log-prob-grad"],
        why="calls the library's gaussian_log_prob instead of writing the Gaussian",
    ),
    Mistake(
        "flow-log-prob",
        LOG_PROB.format(log_pz="(-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).mean(dim=1)", ret="log_pz + logdet"),
        fails=["flow-log-prob-affine"],
        why="mean over the dimensions instead of the sum (right only for D = 1)",
    ),
    Mistake(
        "affine-inverse",
        INVERSE.format(y="z.mul_(torch.exp(log_scale)).add_(shift)"),
        fails=["affine-inverse-roundtrip"],
        why="inverse written in place into the caller's z",
    ),
    Mistake(
        "affine-inverse",
        """def affine_inverse(z, shift, log_scale):
    layer = ElementwiseAffine((z.shape[1],), shift=0.0, log_scale=0.0)
    with torch.no_grad():
        layer.shift.copy_(shift)
        layer.log_scale.copy_(log_scale)
        return layer.inverse(z)
""",
        fails=["affine-inverse-roundtrip"],
        why="calls the library's ElementwiseAffine.inverse",
    ),
    Mistake(
        "affine-inverse",
        INVERSE.format(y="z * torch.exp(log_scale.sum()) + shift"),
        fails=["affine-inverse-roundtrip"],
        why="one scale for all features (the log-det's sum used as the scale)",
    ),
]

CORRECT_VARIANTS = [
    Variant(
        "affine-forward",
        FORWARD.format(z="(y - shift) / log_scale.exp()", logdet="-log_scale.sum() * torch.ones(y.shape[0])"),
        why="division by exp(s); log-det times a vector of ones (in the default dtype)",
    ),
    Variant(
        "affine-forward",
        FORWARD.format(z=Z_OK, logdet="-log_scale.expand_as(y).sum(dim=1)"),
        why="log-det as a row sum of the per-feature terms",
    ),
    Variant(
        "affine-forward",
        FORWARD.format(
            z="((y - shift) * torch.exp(-log_scale)).float()",
            logdet="torch.log(torch.exp(-log_scale)).sum().repeat(y.shape[0]).float()",
        ),
        why="everything returned in float32, log-det as log of the scale factors",
    ),
    Variant(
        "affine-forward",
        """def affine_forward(y, shift, log_scale):
    z = torch.empty_like(y)
    for i in range(y.shape[1]):
        z[:, i] = (y[:, i] - shift[i]) * torch.exp(-log_scale[i])
    logdet = torch.zeros(y.shape[0], dtype=y.dtype)
    for i in range(y.shape[1]):
        logdet = logdet - log_scale[i]
    return z, logdet
""",
        why="loops over the features",
    ),
    Variant(
        "flow-log-prob",
        LOG_PROB.format(log_pz="torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)", ret="log_pz + logdet"),
        why="PyTorch's Normal for the latent density",
    ),
    Variant(
        "flow-log-prob",
        LOG_PROB.format(
            log_pz="-0.5 * torch.einsum('bd,bd->b', z, z) - 0.5 * z.shape[1] * math.log(2 * math.pi)",
            ret="logdet + log_pz",
        ),
        why="squared norm by einsum, constant times D",
    ),
    Variant("affine-inverse", INVERSE.format(y="z / torch.exp(-log_scale) + shift"), why="division by exp(-s)"),
    Variant("affine-inverse", INVERSE.format(y="torch.addcmul(shift, z, log_scale.exp())"), why="fused addcmul"),
    Variant(
        "affine-inverse",
        INVERSE.format(y="(z.double() * torch.exp(log_scale.double()) + shift.double())"),
        why="computed in float64 whatever the input dtype",
    ),
]
