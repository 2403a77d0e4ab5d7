"""Joint geometric augmentation of an image, its vessel label and its field-of-view mask.

Winkler et al. 2019 (§5.2) train on DRIVE's 20 images with random rotations
(0-360 degrees), isotropic scaling (0.8-1.2) and shearing (angle ~ N(0, 10 degrees)).
The same affine map must move the photograph, the label and the mask, or the label
stops matching the vessels. The image is resampled bilinearly; the label and mask by
nearest neighbour, so they stay exactly binary. The map is centred on the image, and
samples from outside the canvas are zero (background, outside the FOV), which is why
images are padded first (:func:`cnf_teach.data.drive.pad_image`).

The augmentation is plain torch and runs where the images are: :meth:`JointAugment.batch`
warps a whole batch ``[B, C, H, W]`` (on a GPU, say) with one map per image, drawn from the
same random numbers, in the same order, as :meth:`JointAugment.__call__` item by item.

:class:`FlipAugment` is the exact alternative: random left-right and up-down mirror images,
which move pixels without resampling them, so the photograph's noise and anti-aliasing and the
label's every pixel stay as they were drawn. It is what the shipped vessel models train with on
synthetic retinas, whose generator draws both eyes and both halves of the fundus alike, so a
mirrored retina is another draw of the same generator; the warps above are for the 20 images
of real DRIVE, where resampled views are the only extra data there is.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["affine_matrix", "warp", "warp_batch", "FlipAugment", "JointAugment"]


def affine_matrix(rotation_deg: float, scale: float, shear_deg: float) -> Tensor:
    """The 2x2 map ``A = R(rotation) @ Shear(shear) * scale`` acting on (x, y) image coordinates.

    Args:
        rotation_deg: Rotation angle in degrees.
        scale: Isotropic zoom factor (> 1 enlarges the content).
        shear_deg: Shear angle in degrees (x shifted by ``tan(shear) * y``).

    Returns:
        ``[2, 2]`` float tensor.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    a = math.radians(rotation_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shear = torch.tensor([[1.0, math.tan(math.radians(shear_deg))], [0.0, 1.0]])
    return scale * rot @ shear


def warp(t: Tensor, matrix: Tensor, mode: str = "bilinear") -> Tensor:
    """Apply the forward map ``matrix`` about the centre of ``t`` ``[C, H, W]`` (or ``[B, C, H, W]``).

    The output at normalised position $p$ is the input at $A^{-1} p$ (pixels
    outside the canvas read as zero). Normalised coordinates are scaled by the
    pixel size so that rotations stay rotations on non-square images.
    """
    batched = t.dim() == 4
    t4 = t if batched else t[None]
    out = warp_batch(t4, matrix.expand(t4.shape[0], 2, 2), mode)
    return out if batched else out[0]


def warp_batch(t: Tensor, matrices: Tensor, mode: str = "bilinear") -> Tensor:
    """Warp each image of ``t`` ``[B, C, H, W]`` by its own map ``matrices`` ``[B, 2, 2]``, on ``t``'s device.

    See :func:`warp`; the inverse maps are computed in float64 on the CPU (they are tiny) and
    moved to ``t``'s device with its dtype.
    """
    if t.dim() != 4 or matrices.shape != (t.shape[0], 2, 2):
        raise ValueError(
            f"warp_batch needs images [B, C, H, W] and matrices [B, 2, 2]; got {tuple(t.shape)} and "
            f"{tuple(matrices.shape)}"
        )
    batch, _, height, width = t.shape
    inv = torch.linalg.inv(matrices.detach().cpu().double())  # [B, 2, 2]
    # Work in pixel units: grid coordinates are normalised per axis, so conjugate by diag(W/2, H/2).
    d = torch.diag(torch.tensor([width / 2.0, height / 2.0], dtype=torch.float64))
    theta = torch.linalg.inv(d) @ inv @ d  # [B, 2, 2]
    theta = torch.cat([theta, torch.zeros(batch, 2, 1, dtype=torch.float64)], dim=2)  # [B, 2, 3]
    theta = theta.to(device=t.device, dtype=t.dtype, non_blocking=True)
    grid = F.affine_grid(theta, list(t.shape), align_corners=False)  # [B, H, W, 2]
    return F.grid_sample(t, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _check_shapes(x: Tensor, y: Tensor, mask: Tensor, batch: bool) -> None:
    """Raise unless image, label and mask share H and W (and, for a batch, are ``[B, C, H, W]``)."""
    if (batch and x.dim() != 4) or x.shape[-2:] != y.shape[-2:] or x.shape[-2:] != mask.shape[-2:]:
        what = "be batches [B, C, H, W] that share H and W" if batch else "share H and W"
        raise ValueError(f"image {tuple(x.shape)}, label {tuple(y.shape)} and mask {tuple(mask.shape)} must {what}")


@dataclass
class JointAugment:
    """Random rotation, isotropic scale and shear applied jointly to ``(x, y, mask)``.

    Defaults are the paper's: rotation uniform in [0, 360), scale uniform in
    [0.8, 1.2], shear angle ~ N(0, 10 degrees).

    Attributes:
        rotation: Range of rotation angles in degrees.
        scale: Range of isotropic scale factors.
        shear_std: Standard deviation of the shear angle in degrees.

    Examples:
        >>> import torch
        >>> from cnf_teach.data.augment import JointAugment
        >>> _ = torch.manual_seed(0)
        >>> aug = JointAugment(rotation=(0.0, 90.0), scale=(0.9, 1.1), shear_std=5.0)
        >>> x, y, mask = torch.rand(3, 8, 8), (torch.rand(1, 8, 8) > 0.5).float(), torch.ones(1, 8, 8)
        >>> x2, y2, mask2 = aug(x, y, mask, generator=torch.Generator().manual_seed(0))
        >>> x2.shape, y2.shape, bool(((y2 == 0) | (y2 == 1)).all())  # the label stays binary
        (torch.Size([3, 8, 8]), torch.Size([1, 8, 8]), True)
        >>> xb, yb, mb = aug.batch(x[None], y[None], mask[None], generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(xb[0], x2, atol=1e-6), torch.equal(yb[0], y2)  # batch = item by item, same draws
        (True, True)
    """

    rotation: tuple[float, float] = (0.0, 360.0)
    scale: tuple[float, float] = (0.8, 1.2)
    shear_std: float = 10.0

    def sample_matrix(self, generator: torch.Generator | None = None) -> Tensor:
        """Draw one random affine map ``[2, 2]``."""
        u = torch.rand(2, generator=generator)
        rot = self.rotation[0] + (self.rotation[1] - self.rotation[0]) * u[0].item()
        scale = self.scale[0] + (self.scale[1] - self.scale[0]) * u[1].item()
        shear = self.shear_std * torch.randn(1, generator=generator).item()
        return affine_matrix(rot, scale, shear)

    def __call__(
        self, x: Tensor, y: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Warp image ``x`` ``[C, H, W]`` bilinearly, label ``y`` and ``mask`` ``[1, H, W]`` by nearest neighbour."""
        _check_shapes(x, y, mask, batch=False)
        m = self.sample_matrix(generator)
        return warp(x, m, "bilinear"), warp(y, m, "nearest"), warp(mask, m, "nearest")

    def sample_matrices(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` maps ``[n, 2, 2]``: the same draws, in the same order, as ``n`` calls of :meth:`sample_matrix`."""
        return torch.stack([self.sample_matrix(generator) for _ in range(n)])

    def batch(
        self, x: Tensor, y: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Augment a batch ``x`` ``[B, C, H, W]``, ``y`` and ``mask`` ``[B, 1, H, W]`` on their device.

        Each image gets its own map; the random numbers come from ``generator`` (a CPU
        generator, or the global one), so the result equals calling the augmentation on each
        item in turn with the same generator.
        """
        _check_shapes(x, y, mask, batch=True)
        m = self.sample_matrices(x.shape[0], generator)  # [B, 2, 2]
        return warp_batch(x, m, "bilinear"), warp_batch(y, m, "nearest"), warp_batch(mask, m, "nearest")


@dataclass
class FlipAugment:
    """Random left-right and up-down mirror images applied jointly to ``(x, y, mask)``, exactly.

    Each axis is flipped with probability 1/2, so an image is shown in one of its four mirror
    images. Flips permute pixels: nothing is interpolated, the label stays the annotation that
    was drawn and the photograph keeps its noise. (The synthetic retinas' field of view is centred
    on pixel $n/2$ of an $n$-pixel side, and a mirror image maps pixel $i$ to $n - 1 - i$, so the
    mirrored field of view sits one pixel off; everything inside it is an exact copy.)

    Attributes:
        horizontal: Flip left-right (the width axis) with probability 1/2.
        vertical: Flip up-down (the height axis) with probability 1/2.

    Examples:
        >>> import torch
        >>> from cnf_teach.data.augment import FlipAugment
        >>> x, y, mask = torch.rand(3, 4, 4), (torch.rand(1, 4, 4) > 0.5).float(), torch.ones(1, 4, 4)
        >>> x2, y2, mask2 = FlipAugment()(x, y, mask, generator=torch.Generator().manual_seed(0))
        >>> sorted(x2.flatten().tolist()) == sorted(x.flatten().tolist())  # the same pixels, moved
        True
        >>> gen = torch.Generator().manual_seed(0)
        >>> xb, yb, mb = FlipAugment().batch(x[None], y[None], mask[None], generator=gen)
        >>> torch.equal(xb[0], x2), torch.equal(yb[0], y2)  # batch = item by item, same draws
        (True, True)
    """

    horizontal: bool = True
    vertical: bool = True

    def sample_flips(self, generator: torch.Generator | None = None) -> tuple[bool, bool]:
        """Draw ``(flip width axis, flip height axis)`` for one image."""
        u = torch.rand(2, generator=generator)
        return bool(self.horizontal and u[0] < 0.5), bool(self.vertical and u[1] < 0.5)

    @staticmethod
    def _dims(flips: tuple[bool, bool]) -> list[int]:
        return [d for d, f in zip((-1, -2), flips, strict=True) if f]

    def __call__(
        self, x: Tensor, y: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mirror image ``x`` ``[C, H, W]``, label ``y`` and ``mask`` ``[1, H, W]`` alike."""
        _check_shapes(x, y, mask, batch=False)
        dims = self._dims(self.sample_flips(generator))
        if not dims:
            return x, y, mask
        return x.flip(dims), y.flip(dims), mask.flip(dims)

    def batch(
        self, x: Tensor, y: Tensor, mask: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mirror a batch ``x`` ``[B, C, H, W]``, ``y``, ``mask`` ``[B, 1, H, W]``: the same draws as item by item."""
        _check_shapes(x, y, mask, batch=True)
        out = [self(x[i], y[i], mask[i], generator) for i in range(x.shape[0])]
        return tuple(torch.stack(t) for t in zip(*out, strict=True))  # type: ignore[return-value]
