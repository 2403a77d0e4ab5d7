"""Typical wrong answers to the exercises of ``tutorials/02_coupling_layers.ipynb``.

Each must fail exactly the test cells listed in ``fails``, and each correct variant in
``CORRECT_VARIANTS`` must pass every test cell (see ``test_grading.py``).
"""

from harness import Mistake, Variant

FORWARD = """def coupling_forward(y, net):
    d = y.shape[1] // 2
    y_a, y_b = y[:, :d], y[:, d:]
    {body}
"""
INVERSE = """def coupling_inverse(z, net):
    d = z.shape[1] // 2
    z_a, z_b = z[:, :d], z[:, d:]
    {body}
"""
# The right z, with the log-det left open.
LOGDET = FORWARD.format(
    body="log_s, t = net(y_a)\n    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), {logdet}"
)
STACK = """def stack_forward(layers, y):
    {body}
"""

MISTAKES = [
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="torch.zeros(y.shape[0])"),
        fails=["coupling-forward-logdet", "coupling-forward-grad"],
        why="forgotten log-det term",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="-log_s.sum(1)"),
        fails=["coupling-forward-logdet"],
        why="sign error in the log-det",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="log_s"),
        fails=["coupling-forward-logdet"],
        why="log-det not summed over the features",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="log_s.sum(0)"),
        fails=["coupling-forward-logdet"],
        why="log-det summed over the batch instead of the features",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="torch.exp(log_s).sum(1)"),
        fails=["coupling-forward-logdet"],
        why="sum of the scales s instead of their logs",
    ),
    Mistake(
        "coupling-forward",
        FORWARD.format(
            body="log_s, t = net(y_b)\n    return torch.cat([y_a * torch.exp(log_s) + t, y_b], 1), log_s.sum(1)"
        ),
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="the wrong half transformed (y_a changed as a function of y_b)",
    ),
    Mistake(
        "coupling-forward",
        FORWARD.format(
            body="log_s, t = net(y_b)\n    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), log_s.sum(1)"
        ),
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="the networks fed with the half they transform (not invertible, not triangular)",
    ),
    Mistake(
        "coupling-forward",
        FORWARD.format(
            body="log_s, t = net(y_a)\n    return torch.cat([y_a, (y_b + t) * torch.exp(log_s)], 1), log_s.sum(1)"
        ),
        fails=["coupling-forward-z"],
        why="shift applied before the scale",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_a)\n    return torch.cat([z_a, (z_b - t) * torch.exp(log_s)], 1)"),
        fails=["coupling-inverse-test"],
        why="multiplies by s instead of dividing",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_a)\n    return torch.cat([z_a, z_b * torch.exp(-log_s) - t], 1)"),
        fails=["coupling-inverse-test"],
        why="steps undone in the wrong order (divide first, then subtract t)",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_b)\n    return torch.cat([z_a, (z_b - t) * torch.exp(-log_s)], 1)"),
        fails=["coupling-inverse-test"],
        why="networks evaluated on the wrong half",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_a)\n    return torch.cat([(z_a - t) * torch.exp(-log_s), z_b], 1)"),
        fails=["coupling-inverse-test"],
        why="the wrong half inverted",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="z, total = y, 0\n    for layer in layers:\n        z, total = layer(y)\n    return z, total"
        ),
        fails=["stack-forward-test"],
        why="every layer applied to the input instead of the previous output, log-dets not added",
    ),
    Mistake(
        "stack-forward",
        STACK.format(body="for layer in layers:\n        y, logdet = layer(y)\n    return y, logdet"),
        fails=["stack-forward-test"],
        why="only the last layer's log-det kept",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0])\n    for layer in reversed(layers):\n"
            "        y, logdet = layer(y)\n        total = total + logdet\n    return y, total"
        ),
        fails=["stack-forward-test"],
        why="layers applied in reverse order",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0])\n    for layer in layers:\n"
            "        y, logdet = layer(y)\n        total = total - logdet\n    return y, total"
        ),
        fails=["stack-forward-test"],
        why="log-dets subtracted",
    ),
    # --- Odd D, in-place writes, gradient cuts, hard-coded sizes, the library's own layers ---
    Mistake(
        "coupling-forward",
        """def coupling_forward(y, net):
    y_a, y_b = y.chunk(2, dim=1)
    log_s, t = net(y_a)
    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), log_s.sum(1)
""",
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="torch.chunk keeps ceil(D/2) features, not floor(D/2) (same for even D)",
    ),
    Mistake(
        "coupling-forward",
        """def coupling_forward(y, net):
    d = math.ceil(y.shape[1] / 2)
    y_a, y_b = y[:, :d], y[:, d:]
    log_s, t = net(y_a)
    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), log_s.sum(1)
""",
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="ceil(D/2) features kept",
    ),
    Mistake(
        "coupling-forward",
        """def coupling_forward(y, net):
    y_a, y_b = y[:, :2], y[:, 2:]
    log_s, t = net(y_a)
    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), log_s.sum(1)
""",
        fails=["coupling-forward-z", "coupling-forward-logdet"],
        why="split point hard-coded to the worked example's D = 4",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="torch.tensor([row.sum().item() for row in log_s])"),
        fails=["coupling-forward-grad"],
        why="log-det rebuilt from .item() values: gradient cut",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="log_s.detach().numpy().sum(1)"),
        fails=["coupling-forward-logdet", "coupling-forward-grad"],
        why="log-det returned as a NumPy array",
    ),
    Mistake(
        "coupling-forward",
        FORWARD.format(
            body="log_s, t = net(y_a)\n    y[:, d:] = y_b * torch.exp(log_s) + t\n    return y, log_s.sum(1)"
        ),
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="z_b written into the caller's y in place",
    ),
    Mistake(
        "coupling-forward",
        """def coupling_forward(y, net):
    d = y.shape[1] // 2
    layer = AffineCoupling(y.shape[1], scale="exp_tanh", net_factory=lambda i, o: _AsCouplingNet(net))
    return layer(y)
""",
        fails=["coupling-forward-z", "coupling-forward-logdet", "coupling-forward-grad"],
        why="calls the library's AffineCoupling",
    ),
    Mistake(
        "coupling-forward",
        LOGDET.format(logdet="log_s.mean(1)"),
        fails=["coupling-forward-logdet"],
        why="mean of log s instead of the sum",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_a)\n    z[:, d:] = (z_b - t) * torch.exp(-log_s)\n    return z"),
        fails=["coupling-inverse-test"],
        why="inverse written into the caller's z in place",
    ),
    Mistake(
        "coupling-inverse",
        """def coupling_inverse(z, net):
    z_a, z_b = z.chunk(2, dim=1)
    log_s, t = net(z_a)
    return torch.cat([z_a, (z_b - t) * torch.exp(-log_s)], 1)
""",
        fails=["coupling-inverse-test"],
        why="torch.chunk: ceil(D/2) features kept",
    ),
    Mistake(
        "coupling-inverse",
        """def coupling_inverse(z, net):
    layer = AffineCoupling(z.shape[1], scale="exp_tanh", net_factory=lambda i, o: _AsCouplingNet(net))
    return layer.inverse(z)
""",
        fails=["coupling-inverse-test"],
        why="calls the library's AffineCoupling.inverse",
    ),
    Mistake(
        "coupling-inverse",
        INVERSE.format(body="log_s, t = net(z_a)\n    return torch.cat([z_a, (z_b - t) / log_s], 1)"),
        fails=["coupling-inverse-test"],
        why="divides by log s instead of s",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0])\n    for layer in layers:\n"
            "        y, logdet = layer(y)\n        total = total + logdet.item()\n    return y, total"
        ),
        fails=["stack-forward-test", "stack-forward-grad"],
        why="log-dets added with .item() (only right for a batch of one, and the gradient is cut)",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0])\n    for layer in layers:\n"
            "        y, logdet = layer(y)\n        total = total + logdet.detach()\n    return y, total"
        ),
        fails=["stack-forward-grad"],
        why="log-dets detached before adding them up",
    ),
    Mistake(
        "stack-forward",
        STACK.format(body="return FlowSequence(layers)(y)"),
        fails=["stack-forward-test", "stack-forward-grad"],
        why="calls the library's FlowSequence",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(8)\n    for layer in layers:\n"
            "        y, logdet = layer(y)\n        total = total + logdet\n    return y, total"
        ),
        fails=["stack-forward-test", "stack-forward-grad"],
        why="batch size hard-coded to the size of the first example",
    ),
    Mistake(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0])\n    z = y\n    for layer in layers[:-1]:\n"
            "        z, logdet = layer(z)\n        total = total + logdet\n    return z, total"
        ),
        fails=["stack-forward-test"],
        why="off by one: the last layer skipped",
    ),
]

CORRECT_VARIANTS = [
    Variant(
        "coupling-forward",
        """def coupling_forward(y, net):
    d = y.size(1) // 2
    y_a, y_b = torch.split(y, [d, y.size(1) - d], dim=1)
    log_s, t = net(y_a)
    return torch.cat((y_a, torch.exp(log_s) * y_b + t), dim=1), torch.sum(log_s, dim=-1)
""",
        why="torch.split with explicit sizes, sum over the last dim",
    ),
    Variant(
        "coupling-forward",
        """def coupling_forward(y, net):
    d = y.shape[1] // 2
    log_s, t = net(y[:, :d])
    z = y.clone()
    z[:, d:] = y[:, d:] * log_s.exp() + t
    return z, log_s.sum(1)
""",
        why="writes z_b into a clone of y",
    ),
    Variant(
        "coupling-forward",
        """def coupling_forward(y, net):
    d = y.shape[1] // 2
    y = y.double()
    log_s, t = net(y[:, :d])
    return torch.cat([y[:, :d], y[:, d:] * torch.exp(log_s) + t], 1), log_s.sum(1)
""",
        why="computes in float64 whatever the input dtype",
    ),
    Variant(
        "coupling-inverse",
        """def coupling_inverse(z, net):
    d = z.shape[1] // 2
    log_s, t = net(z[:, :d])
    y = z.clone()
    y[:, d:] = (z[:, d:] - t) / torch.exp(log_s)
    return y
""",
        why="division by s, written into a clone",
    ),
    Variant(
        "coupling-inverse",
        """def coupling_inverse(z, net):
    z_a, z_b = torch.tensor_split(z, [z.shape[1] // 2], dim=1)
    log_s, t = net(z_a)
    return torch.hstack([z_a, (z_b - t) * (-log_s).exp()])
""",
        why="tensor_split and hstack",
    ),
    Variant(
        "stack-forward",
        STACK.format(
            body="logdets = []\n    for layer in layers:\n        y, ld = layer(y)\n        logdets.append(ld)\n"
            "    return y, torch.stack(logdets).sum(0)"
        ),
        why="stacks the log-dets and sums once",
    ),
    Variant(
        "stack-forward",
        STACK.format(
            body="total = 0\n    for layer in layers:\n        y, ld = layer(y)\n        total = total + ld\n"
            "    return y, total"
        ),
        why="starts the sum at the integer 0",
    ),
    Variant(
        "stack-forward",
        STACK.format(
            body="total = torch.zeros(y.shape[0], dtype=y.dtype)\n    for layer in layers:\n"
            "        y, ld = layer(y)\n        total += ld\n    return y, total"
        ),
        why="in-place += on its own accumulator",
    ),
]
