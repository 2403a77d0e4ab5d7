"""Data loaders whose order is reproducible (a seeded generator) and sharded under DDP.

Exact resume depends on it: the shuffling draws from the loader's own generator, whose state
the checkpoint saves.

On CUDA the loader must keep the GPU fed: by default it then uses worker processes (up to 8,
split among the processes of a DDP run), pinned memory (so that ``non_blocking`` copies overlap
with compute), persistent workers (no restart every epoch, which matters when an epoch is a few
steps, as on DRIVE) and a prefetch of 4 batches per worker. On the CPU the defaults stay
serial (no workers), where extra processes only compete for the same cores.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset

from .devices import resolve_device
from .distributed import distributed_info

__all__ = ["make_loader"]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_workers: int | None = 0,
    drop_last: bool = True,
    device: str | torch.device | None = None,
    persistent_workers: bool | None = None,
    prefetch_factor: int = 4,
) -> DataLoader:
    """A ``DataLoader`` whose order is reproducible (seeded generator) and sharded under DDP.

    Args:
        dataset: Map-style dataset.
        batch_size: Batch size per process.
        seed: Seed of the shuffling (and of the workers' seeds).
        shuffle: Reshuffle every epoch.
        num_workers: Loader worker processes; ``None`` chooses: on CUDA up to 8 per GPU
            (the CPU cores divided among the processes), elsewhere 0.
        drop_last: Drop the last incomplete batch (keeps batch statistics steady).
        device: Where the batches go (``"auto"``, ``"cuda"``, ...); ``None`` means ``"auto"``.
            On CUDA the memory is pinned.
        persistent_workers: Keep the workers alive between epochs; ``None``: yes on CUDA when
            there are workers. The sampling order is exactly resumable either way; random
            augmentations drawn inside persistent workers are not replayed exactly on resume.
        prefetch_factor: Batches each worker loads ahead (used only with workers).
    """
    rank, _, world = distributed_info()
    on_cuda = resolve_device("auto" if device is None else str(device)).type == "cuda"
    if num_workers is None:
        num_workers = min(8, max(1, (os.cpu_count() or 1) // max(1, world) - 1)) if on_cuda else 0
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0 (or None to choose), got {num_workers}")
    if persistent_workers is None:
        persistent_workers = on_cuda and num_workers > 0
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if world > 1:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        shuffle = False
    if len(dataset) < batch_size * (world if sampler is None else 1) and drop_last:
        raise ValueError(
            f"the dataset has {len(dataset)} items, fewer than one batch of {batch_size}; "
            "lower the batch size or add data"
        )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
        pin_memory=on_cuda,
        persistent_workers=persistent_workers and num_workers > 0,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
    )
