"""The networks of the vessel-segmentation CNF: VGG-like features (Table 4) and the coupling net (Table 7).

The conditioner $g(x)$ of the DRIVE model is the VGG-like network of Table 4 of Winkler
et al. 2019, layer by layer as printed (resolutions for the paper's 1024x1024 inputs):

| layer | type     | resolution |
|-------|----------|------------|
| 0     | input    | 1024       |
| 1     | block    | 1024       |
| 2     | max-pool | 512        |
| 3     | block    | 512        |
| 4     | block    | 512        |
| 5     | max-pool | 256        |
| 6     | block    | 256        |
| 7     | block    | 256        |

with block = [InstanceNorm, ReLU, conv3x3] and 2x2 max-pools (§5.2). The outputs of
layers 4 and 7 condition the two levels of the flow; the contract is the one of
:class:`~cnf_teach.nets.conditioners.ConvConditioner`, ``g(x) -> [h_0, h_1]`` with
$h_l$ at $H / 2^{l+1}$. The full-resolution features of layer 1 are also available
through :meth:`VGGFeatures.all_features`, for the binary dequantizer, which works at
the label's own resolution, and for the baseline's decoder.

The paper gives no channel widths: ours (32 at full, 64 at half and 128 at quarter
resolution by default) are the project's choice, as is the option of more than one
[InstanceNorm, ReLU, conv3x3] per block (``convs_per_block``; Table 4 has one, the default).

``full_to_half=True`` is our addition (off by default, as in Table 4): $h_0$ also carries layer
1's full-resolution features, moved to $H/2$ by space-to-depth (each 2x2 block of pixels becomes
four channels) instead of the max-pool. Table 4's max-pool keeps, per channel, the largest
response in each 2x2 block and forgets where it was; a vessel one pixel wide can lie in any of
the four positions, and the flow's first level, which models those four pixels as the four
channels of one squeezed position, then has to guess which. Space-to-depth loses nothing.

Instance normalisation is used instead of batch normalisation because the batch is
2 images; it normalises each image's feature maps by their own mean and variance.
Inside the conditioner (and inside coupling networks, Table 7) that is harmless: those
networks are never inverted. (Inside the flow itself it is not a bijection; see
:mod:`cnf_teach.flows.conditional_actnorm`.) Layer 1's instance norm acts on the
photograph itself, so $g(x)$ is indifferent to each channel's exposure and offset.

References:
    Simonyan, Zisserman. Very Deep Convolutional Networks. ICLR 2015 (VGG).
    Ulyanov, Vedaldi, Lempitsky. Instance Normalization. 2016.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2, Tables 4 and 7.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .coupling_nets import zero_init_

__all__ = ["VGGFeatures", "InstanceNormCouplingNet", "vgg_block"]


def vgg_block(in_channels: int, out_channels: int, convs: int = 1) -> nn.Sequential:
    """A block of Table 4: [InstanceNorm - ReLU - conv3x3], repeated ``convs`` times (1 in the paper).

    The first convolution maps ``in_channels -> out_channels``.
    """
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(convs):
        layers += [nn.InstanceNorm2d(c, affine=True), nn.ReLU(), nn.Conv2d(c, out_channels, 3, padding=1)]
        c = out_channels
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """$g(x)$ of Table 4: block, max-pool, block, block, max-pool, block, block; outputs at layers 4 and 7.

    Layers are the attributes ``layer1`` ... ``layer7``, numbered as in Table 4 (``layer2`` and
    ``layer5`` are the 2x2 max-pools).

    Args:
        in_channels: Channels of $x$ (3 for RGB photographs).
        widths: Channels of the blocks at full, half and quarter resolution
            ``(c_full, c_half, c_quarter)`` (layer 1; layers 3-4; layers 6-7). Our choice; the
            paper gives none.
        convs_per_block: [InstanceNorm - ReLU - conv3x3] units in each block (1 in Table 4).
        full_to_half: Append layer 1's features, space-to-depth to $H/2$, to $h_0$ (``4 * c_full``
            more channels; not in Table 4, see the module's docstring).

    Attributes:
        cond_channels: Channels of ``[h_0, h_1]`` (the outputs of layers 4 and 7).
        full_channels: Channels of the full-resolution features (layer 1).

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import VGGFeatures
        >>> _ = torch.manual_seed(0)
        >>> g = VGGFeatures(in_channels=3, widths=(4, 8, 16))
        >>> x = torch.randn(2, 3, 8, 8)
        >>> [tuple(h.shape) for h in g(x)]  # layers 4 and 7: h_0 at H/2, h_1 at H/4
        [(2, 8, 4, 4), (2, 16, 2, 2)]
        >>> f, _ = g.all_features(x)  # plus layer 1, at full resolution
        >>> tuple(f.shape), g.cond_channels, g.full_channels
        ((2, 4, 8, 8), [8, 16], 4)
        >>> g = VGGFeatures(in_channels=3, widths=(4, 8, 16), full_to_half=True)
        >>> [tuple(h.shape) for h in g(x)], g.cond_channels  # h_0 gains 4 x 4 channels
        ([(2, 24, 4, 4), (2, 16, 2, 2)], [24, 16])
    """

    #: Table 4's output layers, conditioning the flow's levels at $H/2$ and $H/4$.
    OUTPUT_LAYERS: tuple[int, int] = (4, 7)

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = (32, 64, 128),
        convs_per_block: int = 1,
        full_to_half: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths needs three entries (full, half, quarter resolution), got {tuple(widths)}")
        if convs_per_block < 1:
            raise ValueError(f"convs_per_block must be >= 1, got {convs_per_block}")
        c0, c1, c2 = widths
        self.layer1 = vgg_block(in_channels, c0, convs_per_block)  # [B, c0, H, W]
        self.layer2 = nn.MaxPool2d(2)  # H/2
        self.layer3 = vgg_block(c0, c1, convs_per_block)
        self.layer4 = vgg_block(c1, c1, convs_per_block)  # output h_0 [B, c1, H/2, W/2]
        self.layer5 = nn.MaxPool2d(2)  # H/4
        self.layer6 = vgg_block(c1, c2, convs_per_block)
        self.layer7 = vgg_block(c2, c2, convs_per_block)  # output h_1 [B, c2, H/4, W/4]
        self.in_channels = in_channels
        self.full_to_half = full_to_half
        self.cond_channels = [c1 + (4 * c0 if full_to_half else 0), c2]
        self.full_channels = c0

    def all_features(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``x [B, C, H, W] -> (f [B, c_full, H, W], [h_0 [B, c_half, H/2, W/2], h_1 [B, c_quarter, H/4, W/4]])``.

        ``f`` is layer 1's output, ``h_0`` layer 4's and ``h_1`` layer 7's; with ``full_to_half``,
        ``h_0`` is layer 4's output and ``f`` space-to-depth, ``[B, c_half + 4 c_full, H/2, W/2]``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"VGGFeatures expects images [B, {self.in_channels}, H, W], got shape {tuple(x.shape)}")
        if x.shape[2] % 4 or x.shape[3] % 4:
            raise ValueError(f"VGGFeatures needs H and W divisible by 4, got {x.shape[2]}x{x.shape[3]}; pad the image")
        f = self.layer1(x)  # [B, c0, H, W]
        h0 = self.layer4(self.layer3(self.layer2(f)))  # [B, c1, H/2, W/2]
        h1 = self.layer7(self.layer6(self.layer5(h0)))  # [B, c2, H/4, W/4]
        if self.full_to_half:
            h0 = torch.cat([h0, F.pixel_unshuffle(f, 2)], dim=1)  # [B, c1 + 4 c0, H/2, W/2]
        return f, [h0, h1]

    def forward(self, x: Tensor) -> list[Tensor]:
        """The conditioner contract: ``g(x) -> [h_0, h_1]`` (the outputs of layers 4 and 7)."""
        return self.all_features(x)[1]


class InstanceNormCouplingNet(nn.Sequential):
    """Table 7's coupling network: conv3x3(hidden) - InstanceNorm - ReLU - conv3x3(out).

    The last convolution starts at zero, so every additive coupling starts as the identity.

    Args:
        in_channels: Input channels (the untouched half plus the conditioning channels).
        out_channels: Output channels.
        hidden: Hidden channels (32 in the paper).

    Examples:
        >>> import torch
        >>> from cnf_teach.nets import InstanceNormCouplingNet
        >>> _ = torch.manual_seed(0)
        >>> net = InstanceNormCouplingNet(in_channels=6, out_channels=4, hidden=8)
        >>> out = net(torch.randn(2, 6, 8, 8))
        >>> out.shape, bool((out == 0).all())  # the last convolution starts at zero
        (torch.Size([2, 4, 8, 8]), True)
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 32) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.InstanceNorm2d(hidden, affine=True),
            nn.ReLU(),
            zero_init_(nn.Conv2d(hidden, out_channels, 3, padding=1)),
        )
