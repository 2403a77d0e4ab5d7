"""Downsampled ImageNet (Chrabaszcz et al. 2017) as (LR, HR) pairs for super-resolution.

Winkler et al. 2019 (§5.1, Tables 1 and 2) train their SR flows on ImageNet32 and ImageNet64:
the HR image is the 32x32 (or 64x64) image and the LR input its MATLAB-bicubic downscale by 2.

The files are those of Chrabaszcz, Loshchilov & Hutter (2017), read by
:mod:`cnf_teach.data.imagenet_files`.

Splits follow §5.1 of Winkler et al. 2019: ImageNet's validation images are the *test* set
(``split="val"``, or its alias ``"test"``), and 10,000 training images are held out for
validation (``split="holdout"``), the rest being the training set (``split="train"``). The
hold-out is a seeded random subset of the training images, the same on every run.

LR images never change, so ``cache_lr=True`` computes them once, in large vectorised chunks
when the split is loaded, instead of one MATLAB-bicubic downscale per item and epoch (about
0.5 ms an image, 30 ms a batch of 64: as long as a GPU step). It costs $1/s^2$ of the HR
memory. The random horizontal flip commutes with the downscale (the bicubic weights are
symmetric and $S$ is a multiple of $s$; a test checks equality), so a cached item is exactly
the item computed on the fly.

Several processes on one machine (DDP, ``DataLoader`` workers) would each hold a decompressed
copy of the images; :func:`write_imagenet_cache` (``cnf-teach sr prepare``) writes
memory-mappable copies once, which the dataset then reads through the shared page cache
(:mod:`cnf_teach.data.imagenet_cache`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .imagenet_cache import MappedFile, read_cached, write_imagenet_cache
from .imagenet_files import imagenet_files, load_imagenet_batch, save_imagenet_batch
from .images import make_lr

__all__ = [
    "HOLDOUT",
    "DownsampledImageNet",
    "imagenet_files",
    "load_imagenet_batch",
    "save_imagenet_batch",
    "write_imagenet_cache",
]

logger = logging.getLogger(__name__)

#: Training images held out for validation (§5.1 of Winkler et al. 2019).
HOLDOUT = 10_000


class DownsampledImageNet(Dataset):
    """(LR, HR) pairs from downsampled-ImageNet npz files; LR by MATLAB bicubic at $1/s$.

    Args:
        root: Folder with ``train_data_batch_*.npz`` and/or ``val_data.npz``.
        split: ``"train"`` (the training images less the hold-out), ``"holdout"`` (the held-out
            training images, the paper's validation set), ``"val"`` or ``"test"`` (ImageNet's
            validation file, the paper's test set).
        scale: SR factor $s$; the side S must be a multiple of it.
        flips: Random horizontal flips (off by default, as the paper reports none).
        max_images: Read files in order until this many images are loaded (``None``: all); the
            hold-out is drawn from the loaded images.
        holdout: Training images held out (10,000 in the paper; 0 keeps them all for training).
            A copy with at most ten times as many images holds out a tenth of them instead (and
            logs it), so that small local copies still have both parts.
        holdout_seed: Seed of the hold-out's random choice.
        cache_lr: Compute every LR image once, when the split is loaded (see the module docstring).
        mmap: Read the memory-mapped copies that :func:`write_imagenet_cache` wrote, where they are
            up to date (their LR images too, with ``cache_lr``); ``False`` reads the npz files.

    Items:
        ``(lr, hr)``: uint8 ``[3, S/s, S/s]`` and ``[3, S, S]``.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> from cnf_teach.data import DownsampledImageNet
        >>> from cnf_teach.data.imagenet import save_imagenet_batch
        >>> images = np.random.default_rng(0).integers(0, 256, (30, 3, 8, 8), dtype=np.uint8)  # 30 images, S = 8
        >>> with tempfile.TemporaryDirectory() as root:
        ...     save_imagenet_batch(f"{root}/train_data_batch_1.npz", images)
        ...     train = DownsampledImageNet(root, "train", scale=2, holdout=2)
        ...     held = DownsampledImageNet(root, "holdout", scale=2, holdout=2)
        >>> len(train), len(held)
        (28, 2)
        >>> lr, hr = train[0]
        >>> lr.shape, hr.shape, lr.dtype
        (torch.Size([3, 4, 4]), torch.Size([3, 8, 8]), torch.uint8)
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        scale: int = 2,
        flips: bool = False,
        max_images: int | None = None,
        holdout: int = HOLDOUT,
        holdout_seed: int = 0,
        cache_lr: bool = False,
        mmap: bool = True,
    ) -> None:
        if int(scale) != scale or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        if split not in ("train", "holdout", "val", "test"):
            raise ValueError(f"split must be 'train', 'holdout', 'val' or 'test', got {split!r}")
        if holdout < 0:
            raise ValueError(f"holdout must be >= 0, got {holdout}")
        self.scale, self.flips, self.split = int(scale), flips, split
        self.files = imagenet_files(root, "train" if split in ("train", "holdout") else "val")
        self.batches: list[np.ndarray] = []  # [n, 3, S, S] uint8 per file, in RAM or memory-mapped
        lr_batches: list[np.ndarray | None] = []  # the files' memory-mapped LR copies, where they exist
        total = 0
        for path in self.files:
            hr, lr = read_cached(path, self.scale) if mmap else (None, None)
            batch = hr if hr is not None else load_imagenet_batch(path)
            if self.batches and batch.shape[2:] != self.batches[0].shape[2:]:
                raise ValueError(
                    f"{path} holds {batch.shape[2]}px images but {self.files[0]} {self.batches[0].shape[2]}px"
                )
            if max_images is not None:
                batch = batch[: max_images - total]
                lr = lr[: len(batch)] if lr is not None else None
            self.batches.append(batch)
            lr_batches.append(lr)
            total += len(batch)
            if max_images is not None and total >= max_images:
                break
        mapped = sum(isinstance(b, np.memmap) for b in self.batches)
        if mapped:
            logger.info("memory-mapping %d of %d files from their cached copies", mapped, len(self.batches))
        self.resolution = self.batches[0].shape[2]
        if self.resolution % self.scale:
            raise ValueError(
                f"{self.resolution}px images cannot be downscaled by {self.scale}; use a scale dividing it"
            )
        self.offsets = np.cumsum([0] + [len(b) for b in self.batches])
        self.index: np.ndarray | None = None  # positions in the loaded files; None = all, in order
        if split in ("train", "holdout"):
            n = int(self.offsets[-1])
            k = holdout if n > 10 * holdout else min(holdout, n // 10)
            if k < holdout:
                logger.info("%d training images: holding out %d (a tenth) instead of %d", n, k, holdout)
            g = torch.Generator().manual_seed(holdout_seed)
            held = np.zeros(n, dtype=bool)
            held[torch.randperm(n, generator=g)[:k].numpy()] = True
            self.index = np.flatnonzero(held if split == "holdout" else ~held)
            if len(self.index) == 0:
                raise ValueError(f"split {split!r} of {root} is empty ({n} training images, {k} held out)")

        # LR images computed once: read from the memory-mapped copies if every file has one, else
        # downscaled now ([N, 3, S/s, S/s] uint8, this split's order).
        self.lr_batches: list[np.ndarray] | None = None
        self.lr_cache: Tensor | None = None
        if cache_lr and all(lr is not None for lr in lr_batches):
            self.lr_batches = lr_batches  # type: ignore[assignment]
        elif cache_lr:
            self.lr_cache = self._downscale_all()

    def _downscale_all(self, chunk: int = 4096) -> Tensor:
        """Every LR image of the split, downscaled in chunks of ``chunk`` images: ``[N, 3, S/s, S/s]`` uint8."""
        side = self.resolution // self.scale
        out = torch.empty(len(self), 3, side, side, dtype=torch.uint8)
        for start in range(0, len(self), chunk):
            stop = min(start + chunk, len(self))
            hr = torch.stack([self.hr(i) for i in range(start, stop)])  # [n, 3, S, S]
            out[start:stop] = make_lr(hr, self.scale)
        logger.info("cached %d LR images (%.1f MB)", len(self), out.numel() / 2**20)
        return out

    def __len__(self) -> int:
        return int(self.offsets[-1]) if self.index is None else len(self.index)

    def hr(self, index: int) -> Tensor:
        """The HR image ``index`` (of this split) as uint8 ``[3, S, S]``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        b, j = self._position(index)
        return torch.from_numpy(np.array(self.batches[b][j]))  # a copy: also out of a memory map

    def _position(self, index: int) -> tuple[int, int]:
        """(file, row) of image ``index`` of this split."""
        if self.index is not None:
            index = int(self.index[index])
        b = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return b, index - int(self.offsets[b])

    def _cached_lr(self, index: int) -> Tensor | None:
        """The LR image ``index`` computed once (in RAM or memory-mapped), or ``None`` without ``cache_lr``."""
        if self.lr_cache is not None:
            return self.lr_cache[index]
        if self.lr_batches is not None:
            b, j = self._position(index)
            return torch.from_numpy(np.array(self.lr_batches[b][j]))
        return None

    def __getstate__(self) -> dict:
        """Memory-mapped arrays travel as their file and length (to workers started by spawn), not as data."""
        state = self.__dict__.copy()
        for key in ("batches", "lr_batches"):
            if state.get(key) is not None:
                state[key] = [MappedFile.of(a) if isinstance(a, np.memmap) else a for a in state[key]]
        return state

    def __setstate__(self, state: dict) -> None:
        for key in ("batches", "lr_batches"):
            if state.get(key) is not None:
                state[key] = [a.open() if isinstance(a, MappedFile) else a for a in state[key]]
        self.__dict__.update(state)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        hr = self.hr(index)  # [3, S, S]
        flip = self.flips and bool(torch.rand(()) < 0.5)
        if flip:
            hr = hr.flip(-1).contiguous()
        lr = self._cached_lr(index)  # [3, S/s, S/s]; downscale and flip commute
        if lr is None:
            return make_lr(hr, self.scale), hr
        return (lr.flip(-1).contiguous() if flip else lr), hr
