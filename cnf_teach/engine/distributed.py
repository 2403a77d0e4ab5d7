"""Several processes under ``torchrun``: rank and world size, and joining the process group.

DDP (``torch.nn.parallel.DistributedDataParallel``) averages gradients across processes; the
engine joins the group that ``torchrun`` describes in the environment (NCCL on CUDA, gloo on
the CPU) and shards the data with :class:`torch.utils.data.DistributedSampler`.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..utils import process_share

__all__ = ["distributed_info", "init_distributed"]


def distributed_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the environment ``torchrun`` sets (``(0, 0, 1)`` alone)."""
    rank, world = process_share()
    return rank, int(os.environ.get("LOCAL_RANK", 0)), world


def init_distributed(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes; ``False`` when running alone."""
    _, _, world = distributed_info()
    if world <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True
