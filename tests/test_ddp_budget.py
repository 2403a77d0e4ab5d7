"""Under DDP the wall-clock budget is one decision for all ranks (all-reduced), so no rank hangs.

Two gloo processes on the CPU, started with the environment ``torchrun`` would give them. Rank 0
gets a zero budget and rank 1 an unlimited one, the extreme of clocks that drift apart: with a
per-rank decision rank 0 would stop after one step and rank 1 would wait forever in the next
gradient all-reduce. With the all-reduced decision both stop after the same step.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from torch import nn
    from torch.utils.data import TensorDataset
    from cnf_teach.engine import TrainConfig, Trainer, make_loader

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    data = TensorDataset(x, 3 * x + 1)
    model = nn.Linear(1, 1)
    def loss_fn(m, batch):
        xb, yb = batch
        return (m(xb) - yb).pow(2).mean(), {}
    rank = int(__import__("os").environ["RANK"])
    loader = make_loader(data, batch_size=4, seed=0, shuffle=False)
    budget = 0.0 if rank == 0 else 1e9
    cfg = TrainConfig(steps=10**6, lr=0.1, device="cpu", progress=False, max_seconds=budget)
    trainer = Trainer(model, loss_fn, loader, cfg)
    trainer.fit()
    with open(f"{sys.argv[1]}/rank{dist.get_rank()}.json", "w") as f:
        json.dump({"step": trainer.step, "params": [p.detach().tolist() for p in model.parameters()]}, f)
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_time_budget_is_one_decision_for_all_ranks(tmp_path: Path) -> None:
    script = tmp_path / "ddp_budget.py"
    script.write_text(_SCRIPT)
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        cmd = [sys.executable, str(script), str(tmp_path)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=600)  # generous: a loaded machine imports torch slowly
            assert proc.returncode == 0, err[-2000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 1  # rank 0's spent budget stopped both
    assert ranks[0]["params"] == ranks[1]["params"]
