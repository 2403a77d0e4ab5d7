"""An offline super-resolution set: natural images bundled with scikit-image.

Benchmark sets and ImageNet have to be fetched; the photographs that ship inside the
scikit-image package (``skimage.data``) do not, so every SR command and notebook can run on
a fresh machine without a network. Only images stored in the package itself are used
(never those that ``skimage.data`` downloads on first use).

- training: astronaut, coffee, rocket, immunohistochemistry, motorcycle_left
  (colour photographs, 400 to 741 pixels a side);
- test: chelsea, camera (grayscale), coins (grayscale).

They are far too few to learn a good SR model, but enough to run, test and teach every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import skimage.data

from .images import SRImageDataset

__all__ = ["NATURAL_TRAIN", "NATURAL_TEST", "natural_image", "natural_sr_dataset"]

NATURAL_TRAIN = ("astronaut", "coffee", "rocket", "immunohistochemistry", "motorcycle_left")
NATURAL_TEST = ("chelsea", "camera", "coins")


def natural_image(name: str) -> tuple[np.ndarray, bool]:
    """One bundled image as ``H x W x 3`` uint8, and whether it is grayscale (then repeated to 3 channels)."""
    if name == "motorcycle_left":
        img = skimage.data.stereo_motorcycle()[0]
    elif name in NATURAL_TRAIN + NATURAL_TEST:
        img = getattr(skimage.data, name)()
    else:
        raise ValueError(f"unknown natural image {name!r}; choose from {', '.join(NATURAL_TRAIN + NATURAL_TEST)}")
    img = np.asarray(img)
    gray = img.ndim == 2
    if gray:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8)), gray


def natural_sr_dataset(
    split: str = "train",
    scale: int = 2,
    patch_size: int | None = None,
    flips: bool = True,
    repeat: int = 1,
    names: Sequence[str] | None = None,
) -> SRImageDataset:
    """(LR, HR) pairs from the bundled images (see :class:`cnf_teach.data.images.SRImageDataset`).

    Args:
        split: ``"train"`` (:data:`NATURAL_TRAIN`) or ``"test"`` (:data:`NATURAL_TEST`).
        scale: As in :class:`~cnf_teach.data.images.SRImageDataset`.
        patch_size: As in :class:`~cnf_teach.data.images.SRImageDataset`.
        flips: As in :class:`~cnf_teach.data.images.SRImageDataset`.
        repeat: As in :class:`~cnf_teach.data.images.SRImageDataset`.
        names: Use these bundled images instead of the split's.
    """
    if names is None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        names = NATURAL_TRAIN if split == "train" else NATURAL_TEST
    loaded = [natural_image(n) for n in names]
    return SRImageDataset(
        [img for img, _ in loaded],
        scale=scale,
        patch_size=patch_size,
        flips=flips,
        names=list(names),
        gray=[g for _, g in loaded],
        repeat=repeat,
    )
