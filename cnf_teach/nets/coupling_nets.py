"""The small networks inside coupling layers and conditional priors.

A coupling layer never inverts its network, so the network can be anything. Two
shapes are used here: an MLP for vectors (the 2D toy densities) and the paper's
convolutional net for images (Table 6 of Winkler et al. 2019: conv3x3(512) - ReLU -
conv1x1(512) - ReLU - conv3x3(c_out)). The last layer starts at zero so that every
coupling starts as (nearly) the identity, which makes deep flows trainable from step
one (Kingma & Dhariwal 2018, §3.3).

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Table 6.
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["MLP", "CouplingConvNet", "NetFactory", "zero_init_"]

#: Builds a network ``net(in_features, out_features)``; coupling layers and priors
#: take one so that a learner can swap the network without touching the flow.
NetFactory = Callable[[int, int], nn.Module]


def zero_init_(layer: nn.Module) -> nn.Module:
    """Set a layer's weight and bias to zero in place, and return it."""
    nn.init.zeros_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


class MLP(nn.Sequential):
    """Linear - ReLU - Linear - ReLU - Linear(zero-initialised), for ``[B, D]`` inputs.

    Args:
        in_features: Input width.
        out_features: Output width.
        hidden: Hidden width.
        zero_last: Initialise the last layer at zero (identity coupling at start).

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import MLP
        >>> _ = torch.manual_seed(0)
        >>> net = MLP(in_features=2, out_features=4, hidden=16)
        >>> out = net(torch.randn(2, 2))
        >>> out.shape, bool((out == 0).all())  # the last layer starts at zero
        (torch.Size([2, 4]), True)
    """

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, zero_last: bool = True) -> None:
        last = nn.Linear(hidden, out_features)
        if zero_last:
            zero_init_(last)
        super().__init__(
            nn.Linear(in_features, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            last,
        )


class CouplingConvNet(nn.Sequential):
    """conv3x3(hidden) - ReLU - conv1x1(hidden) - ReLU - conv3x3(out), for ``[B, C, H, W]``.

    Table 6 of Winkler et al. 2019 (hidden = 512 there). The last convolution is
    zero-initialised.

    Args:
        in_channels: Input channels (the untouched half plus the conditioning channels).
        out_channels: Output channels (two per transformed channel for affine coupling).
        hidden: Hidden channels.
        zero_last: Initialise the last convolution at zero.

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import CouplingConvNet
        >>> _ = torch.manual_seed(0)
        >>> net = CouplingConvNet(in_channels=6, out_channels=4, hidden=8)
        >>> out = net(torch.randn(2, 6, 8, 8))
        >>> out.shape, bool((out == 0).all())  # the last convolution starts at zero
        (torch.Size([2, 4, 8, 8]), True)
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 512, zero_last: bool = True) -> None:
        last = nn.Conv2d(hidden, out_channels, 3, padding=1)
        if zero_last:
            zero_init_(last)
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(),
            last,
        )

    def forward(self, x: Tensor) -> Tensor:  # [B, C_in, H, W] -> [B, C_out, H, W]
        return super().forward(x)
