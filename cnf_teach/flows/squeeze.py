"""Squeeze: trade spatial resolution for channels, ``[B, C, H, W] -> [B, 4C, H/2, W/2]``.

Each 2x2 block of pixels becomes four channels at one pixel. It only rearranges
entries, so it is volume preserving ($\\log|\\det| = 0$). Squeezing lets the later
coupling layers see (and mix) larger neighbourhoods, and makes the multi-scale
architecture possible (Dinh et al. 2017, §3.6).

References:
    Dinh, Sohl-Dickstein, Bengio. Density estimation using Real NVP. ICLR 2017.
"""

from __future__ import annotations

from torch import Tensor

from .base import Bijection, zero_logdet

__all__ = ["Squeeze"]


class Squeeze(Bijection):
    """Space-to-depth by a factor ``factor`` (2 by default); :meth:`inverse` undoes it.

    Args:
        factor: Block size; height and width must be divisible by it.

    Examples:
        >>> import torch
        >>> from cnf_teach.flows import Squeeze
        >>> squeeze = Squeeze()
        >>> y = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> z, logdet = squeeze(y)
        >>> z.shape, logdet.tolist()
        (torch.Size([1, 4, 2, 2]), [0.0])
        >>> z[0, :, 0, 0].tolist()  # the top-left 2x2 block, now four channels at one pixel
        [0.0, 1.0, 4.0, 5.0]
        >>> torch.equal(squeeze.inverse(z), y)
        True
        >>> squeeze(torch.zeros(1, 1, 3, 4))
        Traceback (most recent call last):
        ...
        ValueError: Squeeze needs height and width divisible by 2, got 3x4; ...
    """

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, y: Tensor, h: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if y.dim() != 4:
            raise ValueError(f"Squeeze expects images [B, C, H, W], got shape {tuple(y.shape)}")
        b, c, height, width = y.shape
        f = self.factor
        if height % f or width % f:
            raise ValueError(
                f"Squeeze needs height and width divisible by {f}, got {height}x{width}; "
                "pad or crop the image to a multiple of the flow's 2**levels"
            )
        z = y.reshape(b, c, height // f, f, width // f, f)  # reshape: also for channels-last inputs
        z = z.permute(0, 1, 3, 5, 2, 4).reshape(b, c * f * f, height // f, width // f)
        return z, zero_logdet(y)

    def inverse(self, z: Tensor, h: Tensor | None = None) -> Tensor:
        b, c, height, width = z.shape
        f = self.factor
        if c % (f * f):
            raise ValueError(f"Squeeze.inverse needs channels divisible by {f * f}, got {c}")
        y = z.reshape(b, c // (f * f), f, f, height, width)
        return y.permute(0, 1, 4, 2, 5, 3).reshape(b, c // (f * f), height * f, width * f)
