"""Super-resolution image sets: (LR, HR) pairs from image folders or in-memory images.

The benchmark sets of single-image super-resolution (Set5, Set14, BSD100, T91, ...) are
flat folders of PNG/BMP/JPG/TIF images. The protocol of the literature (Dong et al. 2014;
Lim et al. 2017) and of Winkler et al. 2019, §5.1:

1. crop HR at the right and bottom to a multiple of the scale $s$ ("modcrop");
2. make LR with MATLAB's bicubic ``imresize(hr, 1/s)`` (antialiased), kept as uint8 like
   an image file: see :mod:`cnf_teach.data.imresize`;
3. train on random aligned patches with random flips; evaluate on whole images.

Every item is a pair ``(lr, hr)`` of **uint8** tensors ``[3, h, w]`` and ``[3, s*h, s*w]``
(convert with ``.float()``; the values are the integers 0..255 that dequantization expects).
Grayscale images are repeated to three equal channels so that one model takes every set;
``dataset.gray[i]`` remembers it, and :func:`cnf_teach.super_resolution.evaluate_sr` evaluates such an
image on its one channel, as the literature does.

A multi-scale flow with $L$ levels halves the resolution $L$ times, so whole images are
padded at the right and bottom to a multiple of $2^L$ and the output cropped back
(:func:`pad_to_multiple`, :func:`crop_to`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from .imresize import imresize

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "load_image",
    "modcrop",
    "make_lr",
    "pad_to_multiple",
    "crop_to",
    "SRImageDataset",
    "SRImageFolder",
]

IMAGE_EXTENSIONS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """The image files of a flat folder, sorted by name.

    Raises:
        ValueError: if the folder is missing, is not a folder, or holds no image.
    """
    root = Path(folder)
    if not root.exists():
        raise ValueError(f"image folder {root} does not exist; pass a folder of PNG/BMP/JPG/TIF images")
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; pass a folder of PNG/BMP/JPG/TIF images")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise ValueError(
            f"image folder {root} holds no image ({', '.join(IMAGE_EXTENSIONS)}); put the images directly in it"
        )
    return files


def load_image(path: str | Path) -> tuple[np.ndarray, bool]:
    """Read an 8-bit image as ``H x W x 3`` uint8 and say whether it was grayscale.

    Palette and alpha images are converted to RGB (alpha dropped); grayscale (and 1-bit)
    images are repeated to three channels.

    Returns:
        ``(rgb, gray)``: the ``H x W x 3`` uint8 array and True if the file had one channel.

    Raises:
        ValueError: if the file cannot be decoded or is not 8-bit.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, FIFO or device: opening it could wait forever
        raise ValueError(f"{path} is not a regular file; pass an image file")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise ValueError(
                    f"{path} is a {mode} image (16-bit or float); convert it to 8-bit RGB or grayscale first"
                )
            gray = mode in ("L", "1", "LA")
            arr = np.array(im.convert("L" if gray else "RGB"))  # a writable copy
    except (OSError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ValueError(f"cannot read image {path}: {err}; the file is corrupt or not an image, replace it") from err
    if gray:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr), gray


def modcrop(img: Tensor, scale: int) -> Tensor:
    """Crop ``[..., H, W]`` at the right and bottom to a multiple of ``scale``."""
    h, w = img.shape[-2], img.shape[-1]
    return img[..., : h - h % scale, : w - w % scale]


def make_lr(hr: Tensor, scale: int) -> Tensor:
    """LR by MATLAB bicubic at $1/s$ (antialiased): ``[..., s*h, s*w]`` uint8 -> ``[..., h, w]`` uint8.

    ``hr`` must already be a multiple of ``scale`` (see :func:`modcrop`).
    """
    if hr.shape[-2] % scale or hr.shape[-1] % scale:
        raise ValueError(f"HR size {tuple(hr.shape[-2:])} is not a multiple of scale {scale}; modcrop it first")
    return imresize(hr, scale=1.0 / scale)


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "replicate") -> tuple[Tensor, tuple[int, int]]:
    """Pad ``[..., H, W]`` at the right and bottom to multiples of ``multiple``.

    The paper pads test images at the right and bottom with zeros (§5.1) and scores the outputs
    on the exact image shape (see :func:`cnf_teach.super_resolution.evaluation.pad_to_square`, the
    default of the SR evaluation); repeating the edge (this function's default) keeps the padded border
    looking like the image, which matters for a likelihood model. Works on any dtype (uint8
    included). Pair it with :func:`crop_to` to cut the result back.

    Args:
        x: ``[..., H, W]`` tensor.
        multiple: Target multiple, e.g. $2^L$ for a flow with $L$ levels (times the scale for HR).
        mode: ``"replicate"`` (repeat the last row/column) or ``"zeros"``.

    Returns:
        ``(padded, (H, W))``: the padded tensor and the original size.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if mode not in ("replicate", "zeros"):
        raise ValueError(f"mode must be 'replicate' or 'zeros', got {mode!r}")
    h, w = x.shape[-2], x.shape[-1]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if (ph, pw) == (h, w):
        return x, (h, w)
    if mode == "zeros":
        out = x.new_zeros((*x.shape[:-2], ph, pw))
        out[..., :h, :w] = x
        return out, (h, w)
    rows = torch.arange(ph, device=x.device).clamp(max=h - 1)
    cols = torch.arange(pw, device=x.device).clamp(max=w - 1)
    return x.index_select(-2, rows).index_select(-1, cols), (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Cut ``[..., H', W']`` back to its top-left ``[..., H, W]`` (undoes :func:`pad_to_multiple`)."""
    return x[..., : size[0], : size[1]]


class SRImageDataset(Dataset):
    """(LR, HR) pairs from in-memory images: random aligned patches for training, whole images otherwise.

    Args:
        images: ``H x W x 3`` uint8 arrays (HR).
        scale: Integer SR factor $s$.
        patch_size: HR patch side for training (a multiple of ``scale``); ``None`` gives whole
            (modcropped) images.
        flips: Random horizontal and vertical flips (training patches only).
        names: One name per image (for messages and per-image results).
        gray: Per image, whether it came from a one-channel file.
        repeat: Patches drawn per image and epoch (``len`` is ``repeat * len(images)``).

    Items:
        ``(lr, hr)``: uint8 ``[3, h, w]`` and ``[3, s*h, s*w]``. LR is computed once per image,
        from the whole modcropped HR, so that a patch's LR equals the crop of the image's LR
        (as the benchmark sets are made); patches are aligned crops of both. This is not the
        same as downscaling the HR patch alone: MATLAB's antialiased bicubic at $1/2$ reads 4 HR
        pixels beyond each LR pixel, which a patch fills by mirroring its own edge, so the two
        differ on the outer 2 LR pixels of the patch (by up to a few grey levels) and agree
        exactly inside. The crop of the whole image's LR is the right one (it is how the
        benchmark sets' LR images are made), and it costs no per-item resizing.

    Examples:
        >>> import torch
        >>> from skimage import data
        >>> from cnf_teach.data import SRImageDataset
        >>> image = data.astronaut()[:17, :16]  # 17x16 RGB uint8, modcropped to 16x16
        >>> lr, hr = SRImageDataset([image], scale=2)[0]  # whole images
        >>> lr.shape, hr.shape, hr.dtype
        (torch.Size([3, 8, 8]), torch.Size([3, 16, 16]), torch.uint8)
        >>> _ = torch.manual_seed(0)
        >>> patches = SRImageDataset([image], scale=2, patch_size=8, repeat=4)  # random aligned patches
        >>> len(patches), [tuple(t.shape) for t in patches[0]]
        (4, [(3, 4, 4), (3, 8, 8)])
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        scale: int = 2,
        patch_size: int | None = None,
        flips: bool = True,
        names: Sequence[str] | None = None,
        gray: Sequence[bool] | None = None,
        repeat: int = 1,
    ) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        scale = int(scale)
        self.names = list(names) if names is not None else [f"image_{i}" for i in range(len(images))]
        if len(self.names) != len(images):
            raise ValueError(f"got {len(images)} images but {len(self.names)} names")
        if not images:
            raise ValueError("SRImageDataset needs at least one image")
        if patch_size is not None and (patch_size < scale or patch_size % scale):
            raise ValueError(f"patch_size {patch_size} must be a positive multiple of the scale {scale}")
        if repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {repeat}")
        self.scale, self.patch_size, self.flips, self.repeat = scale, patch_size, flips, repeat
        self.gray = list(gray) if gray is not None else [False] * len(images)
        self.hr: list[Tensor] = []
        self.lr: list[Tensor] = []
        for name, img in zip(self.names, images, strict=True):
            arr = np.asarray(img)
            if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(f"{name}: expected an H x W x 3 uint8 image, got {arr.dtype} {arr.shape}")
            need = patch_size if patch_size is not None else scale
            if min(arr.shape[0], arr.shape[1]) < need:
                raise ValueError(
                    f"{name} is {arr.shape[0]}x{arr.shape[1]}, smaller than the "
                    f"{'patch size' if patch_size is not None else 'scale'} {need}; "
                    "use a smaller patch size or remove the image"
                )
            hr = modcrop(torch.tensor(arr).permute(2, 0, 1), scale).contiguous()  # [3, H, W], a copy
            self.hr.append(hr)
            self.lr.append(make_lr(hr, scale))  # [3, H/s, W/s]

    def __len__(self) -> int:
        return len(self.hr) * (self.repeat if self.patch_size is not None else 1)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        if not -len(self) <= index < len(self):  # a plain `for item in dataset` loop stops here
            raise IndexError(f"index {index} out of range for {len(self)} items")
        i = index % len(self.hr)  # repeated patches cycle through the images
        lr, hr = self.lr[i], self.hr[i]
        if self.patch_size is None:
            return lr, hr
        p, s = self.patch_size // self.scale, self.scale
        h, w = lr.shape[-2], lr.shape[-1]
        top = int(torch.randint(0, h - p + 1, ()).item())
        left = int(torch.randint(0, w - p + 1, ()).item())
        lr = lr[:, top : top + p, left : left + p]
        hr = hr[:, top * s : (top + p) * s, left * s : (left + p) * s]
        if self.flips:
            if torch.rand(()) < 0.5:
                lr, hr = lr.flip(-1), hr.flip(-1)
            if torch.rand(()) < 0.5:
                lr, hr = lr.flip(-2), hr.flip(-2)
        return lr.contiguous(), hr.contiguous()


class SRImageFolder(SRImageDataset):
    """:class:`SRImageDataset` over a flat folder of images (Set5, Set14, BSD100, T91 layouts).

    Args:
        root: The folder.
        scale: As in :class:`SRImageDataset`.
        patch_size: As in :class:`SRImageDataset`.
        flips: As in :class:`SRImageDataset`.
        repeat: As in :class:`SRImageDataset`.

    Raises:
        ValueError: missing or empty folder, a corrupt image, an image smaller than the patch;
            the message names the file or folder and the fix.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from cnf_teach.data import SRImageFolder
        >>> rng = np.random.default_rng(0)
        >>> with tempfile.TemporaryDirectory() as root:
        ...     Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(f"{root}/a.png")
        ...     Image.fromarray(rng.integers(0, 256, (9, 10), dtype=np.uint8)).save(f"{root}/b.png")  # grayscale
        ...     dataset = SRImageFolder(root, scale=2)
        >>> dataset.names, dataset.gray
        (['a.png', 'b.png'], [False, True])
        >>> [tuple(t.shape) for t in dataset[1]]  # (LR, HR); 9x10 modcropped to 8x10, gray repeated to RGB
        [(3, 4, 5), (3, 8, 10)]
    """

    def __init__(
        self,
        root: str | Path,
        scale: int = 2,
        patch_size: int | None = None,
        flips: bool = True,
        repeat: int = 1,
    ) -> None:
        self.root = Path(root)
        self.files = list_images(self.root)
        loaded = [load_image(f) for f in self.files]
        super().__init__(
            [img for img, _ in loaded],
            scale=scale,
            patch_size=patch_size,
            flips=flips,
            names=[str(f) for f in self.files],  # full paths, so that errors name the file
            gray=[g for _, g in loaded],
            repeat=repeat,
        )
        self.names = [f.name for f in self.files]
