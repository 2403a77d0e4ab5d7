"""The networks of the vessel-segmentation CNF: VGG-like features (Table 4) and the coupling net (Table 7).

The conditioner $g(x)$ of the DRIVE model is a small VGG-like network (Winkler et al.
2019, Table 4): blocks of InstanceNorm - ReLU - conv3x3 separated by 2x2 max-pools.
Its outputs at half and quarter resolution (512 and 256 for the paper's 1024x1024
inputs) condition the two levels of the flow; the contract is the one of
:class:`~cnf_teach.nets.conditioners.ConvConditioner`, ``g(x) -> [h_0, h_1]`` with
$h_l$ at $H / 2^{l+1}$. The full-resolution features (before the first pool) are
also available through :meth:`VGGFeatures.all_features`, for the binary
dequantizer, which works at the label's own resolution.

Instance normalisation is used instead of batch normalisation because the batch is
2 images; it normalises each image's feature maps by their own mean and variance.
Inside the conditioner (and inside coupling networks, Table 7) that is harmless: those
networks are never inverted. (Inside the flow itself it is not a bijection; see
:mod:`cnf_teach.flows.instancenorm`.)

Channel widths are configurable; the defaults of ``SegConfig.paper_drive()`` are
ours, as are the numbers of convolutions per block.

References:
    Simonyan, Zisserman. Very Deep Convolutional Networks. ICLR 2015 (VGG).
    Ulyanov, Vedaldi, Lempitsky. Instance Normalization. 2016.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Tables 4 and 7.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .coupling_nets import zero_init_

__all__ = ["VGGFeatures", "InstanceNormCouplingNet", "vgg_block"]


def vgg_block(in_channels: int, out_channels: int, convs: int) -> nn.Sequential:
    """``convs`` x [InstanceNorm - ReLU - conv3x3]; the first conv maps ``in_channels -> out_channels``."""
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(convs):
        layers += [nn.InstanceNorm2d(c, affine=True), nn.ReLU(), nn.Conv2d(c, out_channels, 3, padding=1)]
        c = out_channels
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """$g(x)$ of Table 4: VGG-like blocks at $H$, $H/2$, $H/4$, outputs at $H/2$ and $H/4$.

    Args:
        in_channels: Channels of $x$ (3 for RGB photographs).
        widths: Channels of the three blocks ``(c_full, c_half, c_quarter)``.
        convs_per_block: Convolutions in each block.

    Attributes:
        cond_channels: Channels of ``[h_0, h_1]`` (what the flow's levels receive).
        full_channels: Channels of the full-resolution features.
    """

    def __init__(self, in_channels: int = 3, widths: Sequence[int] = (32, 64, 128), convs_per_block: int = 2) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths needs three entries (full, half, quarter resolution), got {tuple(widths)}")
        if convs_per_block < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {convs_per_block}")
        c0, c1, c2 = widths
        # Normalising each photograph's channels first makes g(x) indifferent to exposure and
        # colour balance, which vary a lot between fundus cameras (and between synthetic and real).
        self.stem = nn.Sequential(nn.InstanceNorm2d(in_channels), nn.Conv2d(in_channels, c0, 3, padding=1))
        self.block0 = vgg_block(c0, c0, convs_per_block)
        self.block1 = vgg_block(c0, c1, convs_per_block)
        self.block2 = vgg_block(c1, c2, convs_per_block)
        self.pool = nn.MaxPool2d(2)
        self.in_channels = in_channels
        self.cond_channels = [c1, c2]
        self.full_channels = c0

    def all_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x [B, C, H, W] -> (f [B, c_full, H, W], [h_0 [B, c_half, H/2, W/2], h_1 [B, c_quarter, H/4, W/4]])``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"VGGFeatures expects images [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        if x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"VGGFeatures needs H and W divisible by 4, got {x.shape[2]}x{x.shape[3]}; pad the image")
        f = self.block0(self.stem(x))  # [B, c0, H, W]
        h0 = self.block1(self.pool(f))  # [B, c1, H/2, W/2]
        h1 = self.block2(self.pool(h0))  # [B, c2, H/4, W/4]
        return f, [h0, h1]

    def forward(self, x: Tensor) -> list[Tensor]:
        """The conditioner contract: ``g(x) -> [h_0, h_1]``."""
        return self.all_features(x)[1]


class InstanceNormCouplingNet(nn.Sequential):
    """Table 7's coupling network: conv3x3(hidden) - InstanceNorm - ReLU - conv3x3(out).

    The last convolution starts at zero, so every additive coupling starts as the identity.

    Args:
        in_channels: Input channels (the untouched half plus the conditioning channels).
        out_channels: Output channels.
        hidden: Hidden channels (32 in the paper).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 32) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.InstanceNorm2d(hidden, affine=True),
            nn.ReLU(),
            zero_init_(nn.Conv2d(hidden, out_channels, 3, padding=1)),
        )
