"""Data loaders whose order is reproducible (a seeded generator) and sharded under DDP.

Exact resume depends on it: the shuffling draws from the loader's own generator, whose state
the checkpoint saves.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .distributed import distributed_info

__all__ = ["make_loader"]


def make_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = True,
) -> DataLoader:
    """A ``DataLoader`` whose order is reproducible (seeded generator) and sharded under DDP.

    Args:
        dataset: Map-style dataset.
        batch_size: Batch size per process.
        seed: Seed of the shuffling (and of the workers' seeds).
        shuffle: Reshuffle every epoch.
        num_workers: Loader worker processes.
        drop_last: Drop the last incomplete batch (keeps batch statistics steady).
    """
    rank, _, world = distributed_info()
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
        persistent_workers=False,
    )
