"""A small conditioner $g(x)$ that gives a multi-scale flow one feature map per level.

In a conditional flow, $x$ never passes through the bijection: it is turned into
features $h = g(x)$ which are concatenated to the inputs of the coupling networks
and of the (split) prior networks (Winkler et al. 2019, §3.1). A multi-scale flow
needs $h$ at every level's resolution. This module runs a small CNN at $x$'s own
resolution, then resizes its output to each level (area averaging going down,
bilinear going up) and adapts the channels with a 1x1 convolution per level. The
super-resolution and vessel models use bigger conditioners (RRDB, VGG-like) with
the same contract.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §3.1, Fig. 6.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvConditioner", "resize_to"]


def resize_to(h: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize ``[B, C, H, W]`` to ``size``: area averaging to shrink, bilinear to enlarge."""
    if tuple(h.shape[2:]) == tuple(size):
        return h
    if h.shape[2] >= size[0] and h.shape[3] >= size[1]:
        return F.adaptive_avg_pool2d(h, size)
    return F.interpolate(h, size=size, mode="bilinear", align_corners=False)


class ConvConditioner(nn.Module):
    """$g(x)$: a small CNN, then one feature map per level at $H / 2^{l+1}$.

    Args:
        in_channels: Channels of $x$.
        out_channels: Channels of every $h_l$.
        levels: Number of levels $L$ of the flow.
        upscale: Ratio of the flow's input size to $x$'s size (2 for 2x
            super-resolution, 1 when $x$ and $y$ have the same size).
        hidden: Hidden channels of the CNN.

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import ConvConditioner
        >>> _ = torch.manual_seed(0)
        >>> g = ConvConditioner(in_channels=3, out_channels=4, levels=2, upscale=2, hidden=8)
        >>> hs = g(torch.randn(2, 3, 8, 8))  # x at 8x8, the flow's y at 16x16
        >>> [tuple(h.shape) for h in hs]  # h_l at 16 / 2^(l+1)
        [(2, 4, 8, 8), (2, 4, 4, 4)]
    """

    def __init__(self, in_channels: int, out_channels: int, levels: int, upscale: int = 1, hidden: int = 32) -> None:
        super().__init__()
        self.levels = levels
        self.upscale = upscale
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(),
        )
        self.heads = nn.ModuleList(nn.Conv2d(hidden, out_channels, 1) for _ in range(levels))

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x [B, C_x, H_x, W_x] -> [h_0, ..., h_{L-1}]``, ``h_l [B, C_out, H/2^(l+1), W/2^(l+1)]``."""
        if x.dim() != 4:
            raise ValueError(f"ConvConditioner expects images [B, C, H, W], got shape {tuple(x.shape)}")
        feats = self.body(x)  # [B, hidden, H_x, W_x]
        height, width = x.shape[2] * self.upscale, x.shape[3] * self.upscale
        out = []
        for level, head in enumerate(self.heads):
            size = (height // 2 ** (level + 1), width // 2 ** (level + 1))
            out.append(head(resize_to(feats, size)))
        return out
