"""The DRIVE retinal-vessel data set as padded tensors for the flow: the overview, and :class:`DriveDataset`.

DRIVE (Staal et al. 2004) holds 40 colour fundus photographs of 584x565 pixels, 20 for
training and 20 for testing, each with a manual vessel segmentation and a mask of the
circular field of view (FOV); the test images have a second, independent manual
segmentation, which gives a "human observer" point to compare models against.

The conditional flow needs height and width divisible by $2^L$; Winkler et al. 2019
(§5.2) pad every image to 1024x1024. :func:`pad_image` pads at the centre (so that
rotations keep the disc inside the canvas) and :func:`crop_back` undoes it.

The data set is split in three modules, each importable from here:

- :mod:`cnf_teach.data.drive_format`: the folder layout and file formats
  (:func:`read_drive_split`, :func:`write_drive_split`, :func:`drive_summary`,
  :class:`DriveImage`, :class:`DriveFormatError`) and :func:`downscale_image`;
- this module: a split as padded tensors (:class:`DriveDataset`, :func:`pad_image`,
  :func:`crop_back`);
- :mod:`cnf_teach.data.drive_loader`: :class:`DeviceDriveLoader`, which keeps the padded
  split on a GPU and augments each batch there.

References:
    Staal, Abramoff, Niemeijer, Viergever, van Ginneken. Ridge-based vessel
    segmentation in color images of the retina. IEEE TMI 23(4), 2004.
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

# Re-exported: these names were defined here before the split, and are imported from here.
from .drive_format import (
    DRIVE_SHAPE,
    SPLITS,
    DriveFormatError,
    DriveImage,
    downscale_image,
    drive_summary,
    read_drive_split,
    write_drive_split,
)

# Re-exported: the loader batches any padded split; it does not import this module.
from .drive_loader import DeviceDriveLoader

__all__ = [
    "DRIVE_SHAPE",
    "SPLITS",
    "DriveFormatError",
    "DriveImage",
    "DriveDataset",
    "DeviceDriveLoader",
    "read_drive_split",
    "write_drive_split",
    "drive_summary",
    "pad_image",
    "crop_back",
    "downscale_image",
]


def pad_image(t: Tensor, size: tuple[int, int], value: float = 0.0) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad ``[..., H, W]`` at the centre to ``size``.

    Returns:
        The padded tensor and the crop box ``(top, left, H, W)`` for :func:`crop_back`.
    """
    height, width = t.shape[-2:]
    if height > size[0] or width > size[1]:
        raise ValueError(f"cannot pad a {height}x{width} image to the smaller {size[0]}x{size[1]}; raise the pad size")
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    pads = (left, size[1] - width - left, top, size[0] - height - top)
    return torch.nn.functional.pad(t, pads, value=value), (top, left, height, width)


def crop_back(t: Tensor, box: tuple[int, int, int, int]) -> Tensor:
    """Undo :func:`pad_image`: ``[..., P, P] -> [..., H, W]``."""
    top, left, height, width = box
    return t[..., top : top + height, left : left + width]


def _pad_size(shape: tuple[int, int], pad_to: int | tuple[int, int] | None, multiple: int) -> tuple[int, int]:
    if pad_to is None:
        return tuple(-(-s // multiple) * multiple for s in shape)  # round up to the multiple
    size = (pad_to, pad_to) if isinstance(pad_to, int) else tuple(pad_to)
    if size[0] % multiple or size[1] % multiple:
        raise ValueError(f"pad size {size} must be divisible by {multiple} (2**levels of the flow)")
    return size


class DriveDataset(Dataset):
    """A DRIVE split as tensors, padded for the flow, with optional downscaling, cropping and augmentation.

    Each item is a dict: ``x`` ``[3, P, P]`` float in [0, 1], ``y`` and ``mask``
    ``[1, P, P]`` float in {0, 1}, ``box`` (the crop box as a ``[4]`` long tensor),
    and ``y2`` when the split has a second grader. Padding is zeros (background,
    outside the FOV).

    For training on a CPU, ``downscale`` shrinks every image once when the split is read
    (:func:`downscale_image`) and ``crop`` makes each item a random ``crop`` x ``crop``
    window of the padded (and augmented) image; evaluation uses whole images (``crop=None``).

    Args:
        root: The DRIVE folder.
        split: ``"training"`` or ``"test"``.
        pad_to: Pad size (1024 in the paper), or ``None`` to round up to ``multiple``.
        multiple: Height and width must be divisible by this ($2^L$).
        augment: Optional ``fn(x, y, mask, generator) -> (x, y, mask)`` applied after
            padding (e.g. :class:`cnf_teach.data.augment.JointAugment`).
        seed: Seed of a private random generator for the augmentation and the crops;
            ``None`` (default) draws from PyTorch's global generator, which the training
            engine saves in its checkpoints (so a resumed run sees the same augmentations).
        downscale: Shrink factor applied when reading (1: the original 584x565; 2: 292x282).
        crop: Side of a random square window taken from each item (divisible by
            ``multiple``), or ``None`` for whole images. In a crop, ``box`` covers the whole window.

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.drive import DriveDataset
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
        >>> config = RetinaConfig(height=20, width=18)
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = make_synthetic_drive(root, num_train=2, num_test=0, config=config, mc_samples=0)
        ...     dataset = DriveDataset(root, "training", multiple=8)
        >>> len(dataset), dataset.size
        (2, (24, 24))
        >>> item = dataset[0]
        >>> item["x"].shape, item["y"].shape, item["box"].tolist()  # padded at the centre; box = (top, left, H, W)
        (torch.Size([3, 24, 24]), torch.Size([1, 24, 24]), [2, 3, 20, 18])
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "training",
        pad_to: int | tuple[int, int] | None = None,
        multiple: int = 4,
        augment: Callable[..., tuple[Tensor, Tensor, Tensor]] | None = None,
        seed: int | None = None,
        downscale: float = 1.0,
        crop: int | None = None,
    ) -> None:
        if crop is not None and (crop < multiple or crop % multiple):
            raise ValueError(f"crop {crop} must be a positive multiple of {multiple} (2**levels of the flow)")
        self.images = [downscale_image(im, downscale) for im in read_drive_split(root, split)]
        self.split = split
        self.downscale = downscale
        self.crop = crop
        self.size = _pad_size(self.images[0].image.shape[:2], pad_to, multiple)
        if crop is not None:
            self.size = (max(self.size[0], crop), max(self.size[1], crop))
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __len__(self) -> int:
        return len(self.images)

    def random_window(self) -> tuple[int, int]:
        """The top-left corner of a random ``crop`` x ``crop`` window of the padded canvas.

        Draws two numbers from the dataset's generator (the global one when it has none);
        :class:`DeviceDriveLoader` calls it in the same order as :meth:`__getitem__`.
        """
        top = int(torch.randint(0, self.size[0] - self.crop + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, self.size[1] - self.crop + 1, (1,), generator=self.generator))
        return top, left

    _window = random_window  # the name before it was public

    def padded(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None, tuple[int, int, int, int]]:
        """Item ``index`` padded, before augmentation and cropping: ``(x, y, mask, y2 or None, box)``."""
        im = self.images[index]
        x = torch.from_numpy(im.image).permute(2, 0, 1).float() / 255.0  # [3, H, W]
        y = torch.from_numpy(im.label)[None].float()  # [1, H, W]
        mask = torch.from_numpy(im.mask)[None].float()
        x, box = pad_image(x, self.size)
        y, _ = pad_image(y, self.size)
        mask, _ = pad_image(mask, self.size)
        y2 = pad_image(torch.from_numpy(im.label2)[None].float(), self.size)[0] if im.label2 is not None else None
        return x, y, mask, y2, box

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        x, y, mask, y2, box = self.padded(index)
        if self.augment is not None:
            x, y, mask = self.augment(x, y, mask, self.generator)
        if self.crop is not None:
            top, left = self.random_window()
            window = (top, left, self.crop, self.crop)
            x, y, mask = (crop_back(t, window) for t in (x, y, mask))
            y2 = crop_back(y2, window) if y2 is not None else None
            box = (0, 0, self.crop, self.crop)
        item = {"x": x, "y": y, "mask": mask, "box": torch.tensor(box)}
        if y2 is not None:
            item["y2"] = y2
        return item
