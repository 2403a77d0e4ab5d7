"""DRIVE batches kept on the device and augmented there (:class:`DeviceDriveLoader`).

On a GPU, :class:`DeviceDriveLoader` keeps the padded split on the device (20 images of
1024x1024 are about 0.5 GB in float32) and augments each batch there, instead of warping
1024x1024 images on the CPU item by item. It is its own module because it is a second way
of batching a :class:`~cnf_teach.data.drive.DriveDataset` (the first is a ``DataLoader``),
with its own concerns: device memory, the order of random draws, and each process's share
under ``torch.distributed``.

It uses the dataset only through what :class:`PaddedSplit` names (``padded``, ``random_window``,
``augment``, ``crop``, ``generator``), so it does not import :mod:`cnf_teach.data.drive`, which
re-exports this loader: the two modules make no circle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor

from ..utils import process_share
from .augment import warp_batch

__all__ = ["DeviceDriveLoader", "PaddedSplit"]


class PaddedSplit(Protocol):
    """What :class:`DeviceDriveLoader` needs of a data set; :class:`~cnf_teach.data.drive.DriveDataset` has it.

    Attributes:
        augment: ``None``, or an augmentation with ``sample_matrix(generator)`` and ``batch``.
        crop: Side of the random square window of each item, or ``None`` for whole images.
        generator: The random generator of the augmentation and the windows (``None``: the global one).

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.drive import DriveDataset
        >>> from cnf_teach.data.drive_loader import PaddedSplit
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
        >>> config = RetinaConfig(height=16, width=16)
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = make_synthetic_drive(root, num_train=1, num_test=0, config=config, mc_samples=0)
        ...     split: PaddedSplit = DriveDataset(root, multiple=8, crop=8, seed=0)
        >>> len(split), split.crop, [t.shape[-1] for t in split.padded(0)[:3]], split.random_window()
        (1, 8, [16, 16, 16], (8, 0))
    """

    augment: Any
    crop: int | None
    generator: torch.Generator | None

    def __len__(self) -> int: ...

    def padded(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None, tuple[int, int, int, int]]:
        """Item ``index`` padded: ``(x [3, P, P], y [1, P, P], mask [1, P, P], y2 or None, box)``."""
        ...

    def random_window(self) -> tuple[int, int]:
        """The top-left corner of a random ``crop`` x ``crop`` window (draws from ``generator``)."""
        ...


class DeviceDriveLoader:
    """Batches of a :class:`~cnf_teach.data.drive.DriveDataset` kept on ``device`` and augmented there.

    The padded images are stacked on the device once; each batch is gathered, warped by
    ``dataset.augment`` (which needs a ``batch`` method, as
    :class:`cnf_teach.data.augment.JointAugment` has) and cropped on the device. The random
    numbers are drawn item by item in the order :meth:`~cnf_teach.data.drive.DriveDataset.__getitem__` draws them
    (the map, then the crop window) from the dataset's generator, so a batch equals the
    default-collated items of a ``DataLoader`` over the same dataset, indices and generator
    state (up to floating-point rounding on a GPU).

    It looks like the ``DataLoader`` the training engine expects: it has ``__len__``, a
    ``generator`` for the shuffling (saved in checkpoints, so resumes are exact) and, under
    ``torch.distributed`` or ``torchrun``, each process takes its own share of every epoch's
    order. The share is known from ``torchrun``'s environment before the process group is
    joined, so ``len(loader)`` (steps per epoch) is right when the schedule is planned.

    Args:
        dataset: The split (``augment`` and ``crop`` as for the CPU path).
        batch_size: Batch size per process.
        device: Where the images live and the batches are made.
        seed: Seed of the shuffling.
        shuffle: Reshuffle every epoch.
        drop_last: Drop the last incomplete batch.
        rank: This process's rank (default: :func:`cnf_teach.utils.process_share`).
        world_size: Number of processes (default: as ``rank``).

    Examples:
        >>> import tempfile
        >>> from cnf_teach.data.augment import JointAugment
        >>> from cnf_teach.data.drive import DeviceDriveLoader, DriveDataset
        >>> from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = make_synthetic_drive(root, num_train=3, num_test=0, config=RetinaConfig(16, 16), mc_samples=0)
        ...     dataset = DriveDataset(root, multiple=8, augment=JointAugment(), seed=0, crop=8)
        >>> loader = DeviceDriveLoader(dataset, batch_size=2, device="cpu", rank=0, world_size=1)
        >>> len(loader)  # 3 images, batches of 2, the last incomplete batch dropped
        1
        >>> batch = next(iter(loader))
        >>> batch["x"].shape, batch["mask"].shape, batch["box"].tolist()
        (torch.Size([2, 3, 8, 8]), torch.Size([2, 1, 8, 8]), [[0, 0, 8, 8], [0, 0, 8, 8]])
    """

    def __init__(
        self,
        dataset: PaddedSplit,
        batch_size: int,
        device: str | torch.device,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if dataset.augment is not None and not hasattr(dataset.augment, "batch"):
            raise ValueError(
                "DeviceDriveLoader augments whole batches: give the dataset an augmentation with a batch() method "
                "(cnf_teach.data.augment.JointAugment), or use a DataLoader"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        rank, world = self._shard()
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank {rank} of {world} processes: need 0 <= rank < world_size")
        share = len(range(rank, len(dataset), world))
        if drop_last and share < batch_size:
            raise ValueError(
                f"the dataset has {share} items for process {rank} of {world}, fewer than one batch of "
                f"{batch_size}; lower the batch size, use fewer processes or add data"
            )
        self.generator = torch.Generator().manual_seed(seed)
        items = [dataset.padded(i) for i in range(len(dataset))]
        self.x = torch.stack([it[0] for it in items]).to(self.device)  # [N, 3, P, P]
        self.y = torch.stack([it[1] for it in items]).to(self.device)  # [N, 1, P, P]
        self.mask = torch.stack([it[2] for it in items]).to(self.device)  # [N, 1, P, P]
        has_y2 = all(it[3] is not None for it in items)
        self.y2 = torch.stack([it[3] for it in items]).to(self.device) if has_y2 else None
        self.box = torch.tensor([it[4] for it in items])  # [N, 4]

    def _shard(self) -> tuple[int, int]:
        """``(rank, world size)``: as given, else this process's share (:func:`cnf_teach.utils.process_share`)."""
        rank, world = process_share()
        return (rank if self.rank is None else self.rank), (world if self.world_size is None else self.world_size)

    def _indices(self) -> list[int]:
        n = len(self.dataset)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        rank, world = self._shard()
        return order[rank::world]

    def __len__(self) -> int:
        rank, world = self._shard()
        share = len(range(rank, len(self.dataset), world))
        return share // self.batch_size if self.drop_last else -(-share // self.batch_size)

    def make_batch(self, indices: list[int]) -> dict[str, Tensor]:
        """The batch of items ``indices``: warped, cropped and on the device (draws from the dataset's generator)."""
        ds = self.dataset
        generator = ds.generator
        index = torch.tensor(indices, device=self.device)
        x, y, mask = self.x[index], self.y[index], self.mask[index]  # [B, C, P, P]
        y2 = self.y2[index] if self.y2 is not None else None
        box = self.box[indices].clone()  # [B, 4]
        matrices, windows = [], []
        for _ in indices:  # the per-item order of draws: the map, then the window
            if ds.augment is not None:
                matrices.append(ds.augment.sample_matrix(generator))
            if ds.crop is not None:
                windows.append(ds.random_window())
        if matrices:
            m = torch.stack(matrices)  # [B, 2, 2]
            x, y, mask = warp_batch(x, m, "bilinear"), warp_batch(y, m, "nearest"), warp_batch(mask, m, "nearest")
        if windows:
            c = ds.crop

            def cut(t: Tensor) -> Tensor:  # [B, C, P, P] -> [B, C, c, c], one window per item
                return torch.stack([t[i, :, a : a + c, b : b + c] for i, (a, b) in enumerate(windows)])

            x, y, mask = cut(x), cut(y), cut(mask)
            y2 = cut(y2) if y2 is not None else None
            box = torch.tensor([[0, 0, c, c]] * len(indices))
        batch = {"x": x, "y": y, "mask": mask, "box": box}
        if y2 is not None:
            batch["y2"] = y2
        return batch

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        order = self._indices()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            yield self.make_batch(order[start : start + self.batch_size])
