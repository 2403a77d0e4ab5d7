"""Shared fixtures: fixed seeds, the shared data folder, and helpers for flow checks."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# The tests run small tensors, where torch's intra-op threads cost more in synchronisation than
# they gain; on a busy 2-core machine two threads made some tests 20x slower than one.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Every test starts from the same random state."""
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds code that uses the legacy global generator
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The benchmark data folder next to the repository; skip with a reason when absent."""
    root = Path(os.environ.get("CNF_TEACH_SHARED_DATA", SHARED_DATA))
    if not root.is_dir():
        pytest.skip(f"shared data folder not found at {root} (set CNF_TEACH_SHARED_DATA to its path)")
    return root


def perturb_(module: torch.nn.Module, scale: float = 0.1) -> torch.nn.Module:
    """Add noise to every parameter, so that zero-initialised layers stop being trivial."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module
