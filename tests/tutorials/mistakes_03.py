"""Typical wrong answers to the exercises of ``tutorials/03_glow_multiscale.ipynb``.

Each must fail exactly the test cells listed in ``fails``, and each correct variant in
``CORRECT_VARIANTS`` must pass every test cell (see ``test_grading.py``).
"""

from harness import Mistake, Variant

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
        fails=["bits-per-dim-uniform", "bits-per-dim-values", "bits-per-dim-grad"],
        why="averaged over the batch instead of one value per image",
    ),
    # --- Gradient cuts, hard-coded sizes, reshape instead of permute, in-place writes, the library ---
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * math.log(abs(torch.linalg.det(weight).item()))"),
        fails=["conv1x1-logdet-grad"],
        why="log-det built from .item() and math.log: right value, gradient cut",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * np.log(abs(np.linalg.det(weight.detach().numpy())))"),
        fails=["conv1x1-logdet-grad"],
        why="log-det computed in NumPy",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="20 * torch.linalg.slogdet(weight)[1]"),
        fails=["conv1x1-logdet-test"],
        why="number of pixels hard-coded to the worked example's 4 x 5",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * height * torch.linalg.slogdet(weight)[1]"),
        fails=["conv1x1-logdet-test"],
        why="assumes a square image",
    ),
    Mistake(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * torch.log(weight.diagonal().abs()).sum()"),
        fails=["conv1x1-logdet-test"],
        why="sum of log|diagonal| of W: right only for a triangular W (the LU form's diagonal, not W's)",
    ),
    Mistake(
        "conv1x1-logdet",
        """def conv1x1_logdet(weight, height, width):
    layer = InvertibleConv1x1(weight.shape[0], lu=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return layer(torch.zeros(1, weight.shape[0], height, width))[1][0]
""",
        fails=["conv1x1-logdet-test", "conv1x1-logdet-grad"],
        why="calls the library's InvertibleConv1x1",
    ),
    Mistake(
        "conv1x1-inverse",
        """def conv1x1_inverse(z, weight):
    b, c, h, w = z.shape
    return (z.reshape(b, h * w, c) @ torch.linalg.inv(weight).T).reshape(b, c, h, w)
""",
        fails=["conv1x1-inverse-test"],
        why="reshape instead of permute: pixels and channels mixed up",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body='z.copy_(torch.einsum("oc,bchw->bohw", torch.linalg.inv(weight), z))'),
        fails=["conv1x1-inverse-test"],
        why="result written into the caller's z in place",
    ),
    Mistake(
        "conv1x1-inverse",
        INVERSE.format(body="(torch.linalg.inv(weight) @ z.reshape(2, 3, -1)).reshape(z.shape)"),
        fails=["conv1x1-inverse-test"],
        why="batch size and channels hard-coded to the worked example",
    ),
    Mistake(
        "conv1x1-inverse",
        """def conv1x1_inverse(z, weight):
    layer = InvertibleConv1x1(weight.shape[0], lu=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
        return layer.inverse(z)
""",
        fails=["conv1x1-inverse-test"],
        why="calls the library's InvertibleConv1x1.inverse",
    ),
    Mistake(
        "squeeze",
        """def squeeze(y):
    return torch.cat([y[:, :, 0::2, 0::2], y[:, :, 0::2, 1::2], y[:, :, 1::2, 0::2], y[:, :, 1::2, 1::2]], 1)
""",
        fails=["squeeze-order"],
        why="offsets concatenated outermost: right for one channel only",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(
            body="z = y.view(2, 3, 2, 2, 3, 2).permute(0, 1, 3, 5, 2, 4)\n    return z.reshape(2, 12, 2, 3)"
        ),
        fails=["squeeze-shape", "squeeze-order"],
        why="shape hard-coded to the worked example",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(
            body="z = y.view(b, c, w // 2, 2, h // 2, 2).permute(0, 1, 3, 5, 2, 4)\n"
            "    return z.reshape(b, 4 * c, h // 2, w // 2)"
        ),
        fails=["squeeze-order"],
        why="height and width swapped in the view (right only for square images)",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(body="return Squeeze()(y)[0]"),
        fails=["squeeze-shape", "squeeze-order"],
        why="calls the library's Squeeze",
    ),
    Mistake(
        "squeeze",
        SQUEEZE.format(
            body="z = y.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 3, 4, 5)\n"
            "    return z.reshape(b, 4 * c, h // 2, w // 2)"
        ),
        fails=["squeeze-order"],
        why="identity permutation: a plain reshape in disguise",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-log_density / (576 * math.log(2)) + 8"),
        fails=["bits-per-dim-values"],
        why="number of dimensions hard-coded to the 24 x 24 faces",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="torch.tensor([-v.item() / (num_dims * math.log(2)) + 8 for v in log_density])"),
        fails=["bits-per-dim-grad"],
        why="rebuilt from .item() values: gradient cut",
    ),
    Mistake(
        "bits-per-dim",
        """def bits_per_dim(log_density, num_dims):
    log_density *= -1
    return log_density / (num_dims * math.log(2)) + 8
""",
        fails=["bits-per-dim-values", "bits-per-dim-grad"],
        why="negates the caller's tensor in place",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="(-log_density / math.log(2) + 8) / num_dims"),
        fails=["bits-per-dim-uniform", "bits-per-dim-values"],
        why="bin-width term divided by D as well",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="-torch.log2(torch.exp(log_density)) / num_dims + 8"),
        fails=["bits-per-dim-values", "bits-per-dim-grad"],
        why="log2 of the exponentiated density: overflows for large images",
    ),
    Mistake(
        "bits-per-dim",
        BPD.format(body="dequantized_bits_per_dim(log_density, num_dims)"),
        fails=["bits-per-dim-uniform", "bits-per-dim-values", "bits-per-dim-grad"],
        why="calls the library's dequantized_bits_per_dim",
    ),
]

CORRECT_VARIANTS = [
    Variant(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * torch.log(torch.abs(torch.det(weight)))"),
        why="log of |det W|",
    ),
    Variant(
        "conv1x1-logdet",
        """def conv1x1_logdet(weight, height, width):
    lu, pivots = torch.linalg.lu_factor(weight)
    return height * width * lu.diagonal().abs().log().sum()
""",
        why="LU decomposition: log|det W| from the diagonal of U",
    ),
    Variant(
        "conv1x1-logdet",
        LOGDET.format(body="height * width * torch.linalg.eigvals(weight).abs().log().sum()"),
        why="sum of log|eigenvalues|",
    ),
    Variant(
        "conv1x1-logdet",
        LOGDET.format(body="0.5 * height * width * torch.logdet(weight.double() @ weight.double().T)"),
        why="half the log-det of W W^T, in float64",
    ),
    Variant(
        "conv1x1-logdet",
        LOGDET.format(body="torch.linalg.slogdet(weight).logabsdet * (height * width)"),
        why="slogdet's named field",
    ),
    Variant(
        "conv1x1-inverse",
        """def conv1x1_inverse(z, weight):
    b, c, h, w = z.shape
    y = torch.linalg.solve(weight, z.reshape(b, c, h * w))
    return y.reshape(b, c, h, w)
""",
        why="linalg.solve on [B, C, H*W] (reshape keeps channels in dim 1)",
    ),
    Variant(
        "conv1x1-inverse",
        INVERSE.format(body="torch.nn.functional.conv2d(z, torch.linalg.inv(weight)[:, :, None, None])"),
        why="a 1x1 conv2d with the inverse matrix",
    ),
    Variant(
        "conv1x1-inverse",
        INVERSE.format(body="(z.permute(0, 2, 3, 1) @ torch.linalg.inv(weight).T).permute(0, 3, 1, 2)"),
        why="channels last, row vectors times the transposed inverse",
    ),
    Variant(
        "conv1x1-inverse",
        INVERSE.format(body='torch.einsum("oc,bchw->bohw", torch.linalg.inv(weight.double()), z.double())'),
        why="computed in float64",
    ),
    Variant(
        "squeeze",
        SQUEEZE.format(body="return torch.nn.functional.pixel_unshuffle(y, 2)"),
        why="PyTorch's pixel_unshuffle",
    ),
    Variant(
        "squeeze",
        SQUEEZE.format(
            body="z = y.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)\n"
            "    return z.reshape(b, c * 4, h // 2, w // 2)"
        ),
        why="reshape instead of view",
    ),
    Variant(
        "squeeze",
        SQUEEZE.format(
            body="parts = [y[:, :, i::2, j::2] for i in range(2) for j in range(2)]\n"
            "    return torch.stack(parts, dim=2).reshape(b, 4 * c, h // 2, w // 2)"
        ),
        why="strided slices stacked next to the channel axis",
    ),
    Variant(
        "squeeze",
        SQUEEZE.format(
            body="return torch.nn.functional.unfold(y, kernel_size=2, stride=2).reshape(b, 4 * c, h // 2, w // 2)"
        ),
        why="unfold with 2x2 patches",
    ),
    Variant(
        "bits-per-dim",
        BPD.format(body="-log_density / num_dims / np.log(2) - math.log2(1 / 256)"),
        why="NumPy's log(2) and the bin width as -log2(1/256)",
    ),
    Variant(
        "bits-per-dim",
        BPD.format(body="(-log_density.double() / num_dims + math.log(256)) / math.log(2)"),
        why="offset added in nats, then converted; in float64",
    ),
    Variant(
        "bits-per-dim",
        BPD.format(body="-(log_density - num_dims * math.log(256)) / (num_dims * math.log(2))"),
        why="bin volume added to the log-likelihood first",
    ),
]
