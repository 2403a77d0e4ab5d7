"""Memory-mapped copies of downsampled-ImageNet files, one in RAM per machine however many processes read it.

The npz files are compressed, so every process that reads them holds its own decompressed
copy: ImageNet64 is $1{,}281{,}167 \\times 3 \\times 64^2$ bytes $\\approx 15.7$ GB of HR images,
plus 3.9 GB of cached LR images at scale 2, *per process*; eight DDP processes on one machine
would need about 160 GB. Uncompressed ``.npy`` copies opened with ``numpy.load(...,
mmap_mode="r")`` are read from the operating system's page cache instead, which every process
(and every ``DataLoader`` worker) on the machine shares: one copy in RAM, filled as it is read.

Layout, beside the npz files: for each ``DIR/<stem>.npz``, the folder ``DIR/cnf_teach_cache/``
holds ``<stem>.hr.npy`` (``[N, 3, S, S]`` uint8), ``<stem>.lr<s>.npy`` (the MATLAB-bicubic LR
images at scale $s$, ``[N, 3, S/s, S/s]`` uint8) and ``<stem>.json``, written last, which
records the npz file's size; a copy whose record does not match its npz file is ignored.
``cnf-teach sr prepare --data DIR`` (:func:`write_imagenet_cache`) writes them once;
:class:`cnf_teach.data.imagenet.DownsampledImageNet` uses them when present.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .imagenet_files import imagenet_files, load_imagenet_batch
from .images import make_lr

__all__ = ["CACHE_FOLDER", "MappedFile", "cache_paths", "read_cached", "write_cached", "write_imagenet_cache"]

logger = logging.getLogger(__name__)

#: The folder, beside the npz files, that holds the memory-mappable copies.
CACHE_FOLDER = "cnf_teach_cache"


def cache_paths(source: str | Path, scale: int) -> tuple[Path, Path, Path]:
    """``(hr.npy, lr<scale>.npy, record.json)`` of the copy of the npz file ``source``."""
    source = Path(source)
    folder = source.parent / CACHE_FOLDER
    return folder / f"{source.stem}.hr.npy", folder / f"{source.stem}.lr{scale}.npy", folder / f"{source.stem}.json"


def _record(source: Path) -> dict[str, int | str]:
    return {"source": source.name, "source_bytes": source.stat().st_size}


def read_cached(source: str | Path, scale: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The memory-mapped HR and LR copies of ``source`` (read-only), each ``None`` where absent.

    A copy that does not match its npz file (rewritten since, or partly written) is ignored,
    with a log message that says how to refresh it.
    """
    source = Path(source)
    hr_path, lr_path, record_path = cache_paths(source, scale)
    if not record_path.is_file() or not hr_path.is_file():
        return None, None
    try:
        record = json.loads(record_path.read_text())
        hr = np.load(hr_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        logger.warning("ignoring the cached copy of %s (%s); rewrite it with `cnf-teach sr prepare`", source, err)
        return None, None
    if record != _record(source) or hr.dtype != np.uint8 or hr.ndim != 4:
        logger.warning("the cached copy of %s is out of date; rewrite it with `cnf-teach sr prepare`", source)
        return None, None
    lr = None
    if lr_path.is_file():
        lr = np.load(lr_path, mmap_mode="r", allow_pickle=False)
        side = hr.shape[-1] // scale
        if lr.shape != (len(hr), 3, side, side) or lr.dtype != np.uint8:
            logger.warning("ignoring %s: its shape does not fit %s", lr_path, hr_path)
            lr = None
    return hr, lr


def _write_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=array.dtype, shape=array.shape)
    out[:] = array
    out.flush()
    del out
    os.replace(tmp, path)


def write_cached(source: str | Path, hr: np.ndarray, lr: np.ndarray | None, scale: int) -> None:
    """Write the copies of ``source``: HR ``[N, 3, S, S]`` and, if given, LR ``[N, 3, S/s, S/s]`` (uint8).

    The record is written last, so a copy interrupted halfway is never used.
    """
    source = Path(source)
    hr_path, lr_path, record_path = cache_paths(source, scale)
    hr_path.parent.mkdir(exist_ok=True)
    record_path.unlink(missing_ok=True)  # invalid until every array is in place
    _write_npy(hr_path, hr)
    if lr is not None:
        _write_npy(lr_path, lr)
    record_path.write_text(json.dumps(_record(source)))


def write_imagenet_cache(root: str | Path, scale: int = 2, chunk: int = 4096) -> list[Path]:
    """Write memory-mappable copies of every npz file in ``root``: HR images and their LR at ``scale``.

    One pass per file: the file is read, its LR images made by MATLAB bicubic in chunks of
    ``chunk`` images, and both written beside it (:mod:`cnf_teach.data.imagenet_cache`). Files
    whose copies are up to date are skipped, so an interrupted run resumes.

    Returns:
        The npz files now covered.

    Raises:
        ValueError: ``root`` holds no downsampled-ImageNet file, or one is unreadable.
    """
    files = []
    for split in ("train", "val"):
        try:
            files += imagenet_files(root, split)
        except ValueError:
            continue  # a folder with one split only
    if not files:
        imagenet_files(root, "train")  # raises with the message naming what is missing
    for path in files:
        hr_old, lr_old = read_cached(path, scale)
        if hr_old is not None and lr_old is not None:
            logger.info("%s: cached copy up to date", path.name)
            continue
        hr = load_imagenet_batch(path)  # [N, 3, S, S]
        if hr.shape[-1] % scale:
            raise ValueError(f"{path}: {hr.shape[-1]}px images cannot be downscaled by {scale}")
        lr = np.concatenate(
            [make_lr(torch.from_numpy(hr[i : i + chunk]), scale).numpy() for i in range(0, len(hr), chunk)]
        )  # [N, 3, S/s, S/s]
        write_cached(path, hr, lr, scale)
        logger.info("%s: wrote %d images and their LR at 1/%d", path.name, len(hr), scale)
    return files


class MappedFile:
    """A memory-mapped array's file and leading length, to re-open it in another process.

    Pickling a ``numpy.memmap`` copies its data; a dataset sent to a worker started by ``spawn``
    sends this small record instead and re-opens the map there.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> from cnf_teach.data.imagenet_cache import MappedFile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     np.save(f"{folder}/a.npy", np.arange(12, dtype=np.uint8).reshape(6, 2))
        ...     mapped = np.load(f"{folder}/a.npy", mmap_mode="r")[:4]  # the first 4 rows
        ...     record = MappedFile.of(mapped)
        ...     again = record.open()
        ...     print(record.length, again.tolist() == mapped.tolist(), isinstance(again, np.memmap))
        4 True True
    """

    def __init__(self, filename: str, length: int) -> None:
        self.filename, self.length = filename, length

    @classmethod
    def of(cls, array: np.memmap) -> MappedFile:
        """The record of ``array``, a leading slice of a memory-mapped ``.npy`` file."""
        if array.filename is None or array.offset != np.load(array.filename, mmap_mode="r").offset:
            raise ValueError("only a leading slice of a memory-mapped .npy file can be re-opened")
        return cls(array.filename, len(array))

    def open(self) -> np.ndarray:
        """The array again, memory-mapped read-only."""
        return np.load(self.filename, mmap_mode="r", allow_pickle=False)[: self.length]
