"""Typical wrong answers to the exercises of ``tutorials/03_glow_multiscale.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

LOGDET = """def conv1x1_logdet(weight, height, width):
    return {body}
"""
INVERSE = """def conv1x1_inverse(z, weight):
    return {body}
"""
SQUEEZE = """def squeeze(y):
    b, c, h, w = y.shape
    {body}
"""
BPD = """def bits_per_dim(log_density, num_dims):
    return {body}
"""

MISTAKES = [
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="torch.linalg.slogdet(weight)[1]"),
        fails=["conv1x1-logdet-test"],
        why="log|det W| of one pixel, not times H*W",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * torch.log(torch.linalg.det(weight))"),
        fails=["conv1x1-logdet-test"],
        why="log det W without the absolute value (NaN for a negative determinant)",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * torch.linalg.det(weight).abs()"),
        fails=["conv1x1-logdet-test"],
        why="|det W| instead of its logarithm",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="-height * width * torch.linalg.slogdet(weight)[1]"),
        fails=["conv1x1-logdet-test"],
        why="sign error in the log-det",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="weight.shape[0] * torch.linalg.slogdet(weight)[1]"),
        fails=["conv1x1-logdet-test"],
        why="multiplied by the number of channels instead of pixels",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body='torch.einsum("oc,bchw->bohw", weight.T, z)'),
        fails=["conv1x1-inverse-test"],
        why="transpose instead of inverse (right only for a rotation)",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body='torch.einsum("oc,bchw->bohw", weight, z)'),
        fails=["conv1x1-inverse-test"],
        why="applies W again instead of its inverse",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body='torch.einsum("co,bchw->bohw", torch.linalg.inv(weight), z)'),
        fails=["conv1x1-inverse-test"],
        why="inverse applied transposed (row vectors instead of column vectors)",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body="1.0 / weight.diagonal().view(1, -1, 1, 1) * z"),
        fails=["conv1x1-inverse-test"],
        why="inverts only the diagonal of W",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(body="return y.reshape(b, 4 * c, h // 2, w // 2)"),
        fails=["squeeze-order"],
        why="plain reshape: a bijection, but 2x2 neighbourhoods are not kept together",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(
            body="z = y.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 5, 3, 2, 4)\n"
            "    return z.reshape(b, 4 * c, h // 2, w // 2)"
        ),
        fails=["squeeze-order"],
        why="column offset before row offset in the channel order",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(
            body="z = y.view(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)\n"
            "    return z.reshape(b, 4 * c, h // 2, w // 2)"
        ),
        fails=["squeeze-order"],
        why="offsets outermost in the channel order (channel (2i + j) C + c)",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(body="return y[:, :, ::2, ::2].repeat(1, 4, 1, 1)"),
        fails=["squeeze-shape", "squeeze-order"],
        why="subsamples and copies: loses three quarters of the pixels",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / num_dims + 8"),
        fails=["bits-per-dim-values"],
        why="natural log instead of log2 (nats per dimension)",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / math.log(2) + 8"),
        fails=["bits-per-dim-values"],
        why="bits per image, not per dimension",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / (num_dims * math.log(2))"),
        fails=["bits-per-dim-uniform", "bits-per-dim-values"],
        why="forgotten 256-bin offset of uniform dequantization",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / (num_dims * math.log(2)) - 8"),
        fails=["bits-per-dim-uniform", "bits-per-dim-values"],
        why="bin-width offset with the wrong sign",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="log_density / (num_dims * math.log(2)) + 8"),
        fails=["bits-per-dim-values"],
        why="log-likelihood instead of negative log-likelihood",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / (num_dims * math.log(10)) + 8"),
        fails=["bits-per-dim-values"],
        why="log10 instead of log2",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="(-log_density / (num_dims * math.log(2)) + 8).mean()"),
        fails=["bits-per-dim-uniform", "bits-per-dim-values"],
        why="averaged over the batch instead of one value per image",
    ),
]
