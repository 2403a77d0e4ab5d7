"""The files of downsampled ImageNet: where they are, how to read and write one.

The files are those of Chrabaszcz, Loshchilov & Hutter, *A Downsampled Variant of ImageNet as
an Alternative to the CIFAR datasets* (2017): ``train_data_batch_1.npz`` ...
``train_data_batch_10.npz`` and ``val_data.npz``, each holding a ``data`` array ``[N, 3*S*S]``
of uint8 images flattened channel-first like CIFAR (the S*S red values row by row, then green,
then blue), ``labels`` (1..1000) and, in the training batches, ``mean``. Only ``data`` is read.
The dataset built on them is :class:`cnf_teach.data.imagenet.DownsampledImageNet`.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np
from torch import Tensor

__all__ = ["imagenet_files", "load_imagenet_batch", "save_imagenet_batch"]


def imagenet_files(root: str | Path, split: str = "train") -> list[Path]:
    """The npz files of one split, in batch order (``train_data_batch_1`` before ``_2`` ... ``_10``).

    Raises:
        ValueError: if the folder is missing or holds no file of that split.
    """
    root = Path(root)
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if not root.is_dir():
        raise ValueError(f"downsampled-ImageNet folder {root} does not exist; pass the folder holding the npz files")
    if split == "val":
        files = [root / "val_data.npz"] if (root / "val_data.npz").is_file() else []
    else:

        def number(p: Path) -> int:
            m = re.search(r"(\d+)$", p.stem)
            return int(m.group(1)) if m else 0

        files = sorted(root.glob("train_data_batch_*.npz"), key=number)
    if not files:
        want = "val_data.npz" if split == "val" else "train_data_batch_*.npz"
        raise ValueError(f"no {want} in {root}; download downsampled ImageNet (npz format) into that folder")
    return files


def load_imagenet_batch(path: str | Path) -> np.ndarray:
    """The images of one npz file as ``[N, 3, S, S]`` uint8.

    Raises:
        ValueError: if the file is unreadable, lacks ``data``, or its rows are not ``3*S*S`` long.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO or device: reading it could wait forever
        raise ValueError(f"{path} is not a regular file; replace it with the npz file")
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read {path}: {err}; the file is corrupt or not an npz, replace it") from err
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} is a single .npy array, not an npz archive with a 'data' array")
    with f:
        if "data" not in f.files:
            raise ValueError(
                f"{path} has no 'data' array (keys: {', '.join(f.files)}); is it a downsampled-ImageNet file?"
            )
        try:
            data = f["data"]
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise ValueError(f"cannot read 'data' in {path}: {err}; the file is corrupt, replace it") from err
    if data.ndim != 2 or data.dtype != np.uint8:
        raise ValueError(f"{path}: 'data' should be a [N, 3*S*S] uint8 array, got {data.dtype} {data.shape}")
    side = math.isqrt(data.shape[1] // 3)
    if 3 * side * side != data.shape[1]:
        raise ValueError(
            f"{path}: rows of length {data.shape[1]} are not 3*S*S for any S; is it a downsampled-ImageNet file?"
        )
    return data.reshape(-1, 3, side, side)  # [N, 3, S, S]: channel-first rows, like CIFAR


def save_imagenet_batch(path: str | Path, images: np.ndarray | Tensor, labels: np.ndarray | None = None) -> None:
    """Write ``[N, 3, S, S]`` uint8 images as one downsampled-ImageNet npz file (``data``, ``labels``).

    Useful to turn any image collection into this format, and for tests.
    """
    arr = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[1] != 3 or arr.shape[2] != arr.shape[3]:
        raise ValueError(f"images must be [N, 3, S, S] uint8, got {arr.dtype} {arr.shape}")
    if labels is None:
        labels = np.ones(len(arr), dtype=np.int64)
    np.savez(path, data=arr.reshape(len(arr), -1), labels=np.asarray(labels))
