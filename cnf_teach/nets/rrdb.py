"""RRDB: the residual-in-residual dense network of ESRGAN, as the SR models' conditioner $g(x)$.

The super-resolution CNF of Winkler et al. 2019 (§5.1, Table 8) conditions every
coupling, split prior and the top prior on features of the low-resolution image $x$
computed by an RRDB network (Wang et al. 2018): 16 residual-in-residual dense blocks with
growth 32 and 128 feature ("context") channels; the factorized baseline uses the same
network with growth 55, which makes the two models' parameter counts equal.

Structure (Wang et al. 2018, Fig. 4):

- a *dense block* has five 3x3 convolutions; the $i$-th sees the block input and the
  outputs of all earlier convolutions (concatenated), each adding ``growth`` channels,
  LeakyReLU(0.2) after the first four; the fifth returns to ``features`` channels and the
  block adds its output, scaled by $\\beta = 0.2$, to its input;
- an *RRDB* chains three dense blocks and again adds $\\beta$ times the result to its input;
- the network is conv3x3 -> RRDB x ``blocks`` -> conv3x3, plus a long skip connection.

:class:`RRDBConditioner` runs the network at the resolution of $x$ and brings its features
to every level of the multi-scale flow ($H / 2^{l+1}$ for a $2\\times$ upscaling), by area
averaging to shrink and bilinear interpolation to enlarge.

References:
    Wang et al. ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks. ECCV
    Workshops 2018, §3.1.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, Table 8.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .conditioners import resize_to

__all__ = ["ResidualDenseBlock", "RRDB", "RRDBNet", "RRDBConditioner"]

#: Residual scaling of ESRGAN (Wang et al. 2018, §3.1): keeps the deep network stable.
RESIDUAL_SCALE = 0.2


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions with a scaled residual connection.

    Args:
        features: Channels in and out.
        growth: Channels each of the first four convolutions adds.

    Examples:
        >>> import torch
        >>> from cnf_teach.nets.rrdb import ResidualDenseBlock
        >>> _ = torch.manual_seed(0)
        >>> block = ResidualDenseBlock(features=8, growth=4)
        >>> block(torch.randn(2, 8, 8, 8)).shape  # the shape is kept
        torch.Size([2, 8, 8, 8])
        >>> [conv.out_channels for conv in block.convs]  # growth, growth, ..., features
        [4, 4, 4, 4, 8]
    """

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(features + i * growth, growth if i < 4 else features, 3, padding=1) for i in range(5)
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)
        for conv in self.convs:  # ESRGAN's initialisation: Kaiming, scaled by 0.1
            nn.init.kaiming_normal_(conv.weight, a=0, mode="fan_in")
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:  # [B, F, H, W] -> [B, F, H, W]
        feats = [x]
        for conv in self.convs[:4]:
            feats.append(self.act(conv(torch.cat(feats, dim=1))))  # [B, F + i * growth, H, W] in
        out = self.convs[4](torch.cat(feats, dim=1))
        return x + RESIDUAL_SCALE * out


class RRDB(nn.Module):
    """Residual in residual dense block: three dense blocks and a scaled residual connection.

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import RRDB
        >>> _ = torch.manual_seed(0)
        >>> rrdb = RRDB(features=8, growth=4)
        >>> rrdb(torch.randn(2, 8, 8, 8)).shape
        torch.Size([2, 8, 8, 8])
        >>> len(rrdb.blocks)  # three dense blocks
        3
    """

    def __init__(self, features: int = 64, growth: int = 32) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(ResidualDenseBlock(features, growth) for _ in range(3)))

    def forward(self, x: Tensor) -> Tensor:  # [B, F, H, W] -> [B, F, H, W]
        return x + RESIDUAL_SCALE * self.blocks(x)


class RRDBNet(nn.Module):
    """conv3x3 -> ``blocks`` RRDBs -> conv3x3, with a skip from the first conv: features of $x$.

    The output keeps $x$'s resolution (no upsampling: the flow or the baseline's head does that).

    Args:
        in_channels: Channels of $x$.
        features: Feature channels (128 in the paper's SR models).
        blocks: Number of RRDBs (16 in the paper).
        growth: Growth channels of the dense blocks (32 for the CNF, 55 for the baseline).

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import RRDBNet
        >>> _ = torch.manual_seed(0)
        >>> net = RRDBNet(in_channels=3, features=8, blocks=2, growth=4)
        >>> net(torch.randn(2, 3, 8, 8)).shape  # features at x's own resolution
        torch.Size([2, 8, 8, 8])
        >>> net(torch.randn(2, 1, 8, 8))  # a grayscale image
        Traceback (most recent call last):
        ...
        ValueError: RRDBNet expects images [B, 3, H, W], got shape (2, 1, 8, 8)...
    """

    def __init__(self, in_channels: int = 3, features: int = 128, blocks: int = 16, growth: int = 32) -> None:
        super().__init__()
        if min(in_channels, features, growth) < 1 or blocks < 0:
            raise ValueError(
                f"RRDBNet needs positive channel counts and blocks >= 0, got in_channels={in_channels}, "
                f"features={features}, blocks={blocks}, growth={growth}"
            )
        self.in_channels = in_channels
        self.features = features
        self.first = nn.Conv2d(in_channels, features, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.body_conv = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C_x, h, w] -> features [B, F, h, w]``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"RRDBNet expects images [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}; "
                "convert grayscale images to RGB or build it with the right in_channels"
            )
        feat = self.first(x)
        return feat + self.body_conv(self.body(feat))


class RRDBConditioner(nn.Module):
    """$g(x) \\to [h_0, \\dots, h_{L-1}]$: RRDB features at each level's resolution.

    Satisfies the conditioner contract of :class:`~cnf_teach.flows.MultiScaleFlow`. For
    an upscaling factor $s$ and a flow over $y$ of size $s h \\times s w$, level $l$ works at
    $s h / 2^{l+1}$; for $s = 2$ level 0 is at $x$'s own resolution. With
    ``full_resolution=True`` one more map at $y$'s resolution is appended (for a variational
    dequantizer, which works on $y$ itself).

    Args:
        in_channels: Channels of $x$.
        features: RRDB feature channels = context channels of every $h_l$.
        blocks: Number of RRDBs.
        growth: Growth channels.
        levels: $L$.
        upscale: $s$, the size of $y$ over the size of $x$.
        full_resolution: Append a map at $y$'s resolution.

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import RRDBConditioner
        >>> _ = torch.manual_seed(0)
        >>> g = RRDBConditioner(3, features=8, blocks=1, growth=4, levels=2, upscale=2, full_resolution=True)
        >>> x = torch.randn(2, 3, 8, 8)  # low-resolution image; y is 16x16
        >>> [tuple(h.shape) for h in g(x)]  # levels 0 and 1, then y's resolution
        [(2, 8, 8, 8), (2, 8, 4, 4), (2, 8, 16, 16)]
    """

    def __init__(
        self,
        in_channels: int = 3,
        features: int = 128,
        blocks: int = 16,
        growth: int = 32,
        levels: int = 2,
        upscale: int = 2,
        full_resolution: bool = False,
    ) -> None:
        super().__init__()
        self.net = RRDBNet(in_channels, features, blocks, growth)
        self.levels = levels
        self.upscale = upscale
        self.full_resolution = full_resolution
        self.out_channels = features

    def sizes(self, x: Tensor) -> list[tuple[int, int]]:
        """Spatial sizes of the returned maps for input ``x``."""
        height, width = x.shape[2] * self.upscale, x.shape[3] * self.upscale
        sizes = [(height // 2 ** (level + 1), width // 2 ** (level + 1)) for level in range(self.levels)]
        return sizes + [(height, width)] if self.full_resolution else sizes

    def forward(self, x: Tensor) -> list[Tensor]:
        """``x [B, C, h, w] -> [h_0, ..., h_{L-1}]`` (``h_l [B, F, s h / 2^(l+1), s w / 2^(l+1)]``)."""
        feat = self.net(x)  # [B, F, h, w]
        return [resize_to(feat, size) for size in self.sizes(x)]
