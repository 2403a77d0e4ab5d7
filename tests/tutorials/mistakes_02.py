"""Typical wrong answers to the exercises of ``tutorials/02_coupling_layers.ipynb``.

Each must fail exactly the test cells listed in ``fails`` (see ``test_grading.py``).
"""

from harness import Mistake

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
        fails=["coupling-forward-logdet"],
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
        fails=["coupling-forward-z"],
        why="the wrong half transformed (y_a changed as a function of y_b)",
    ),
    Mistake(
        "coupling-forward",
        FORWARD.format(
            body="log_s, t = net(y_b)\n    return torch.cat([y_a, y_b * torch.exp(log_s) + t], 1), log_s.sum(1)"
        ),
        fails=["coupling-forward-z", "coupling-forward-logdet"],
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
]
