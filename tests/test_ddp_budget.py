"""Under DDP the wall-clock budget is one decision for all ranks (all-reduced), so no rank hangs.

Two gloo processes on the CPU, started with the environment ``torchrun`` would give them. Rank 0
gets a zero budget and rank 1 an unlimited one, the extreme of clocks that drift apart: with a
per-rank decision rank 0 would stop after one step and rank 1 would wait forever in the next
gradient all-reduce. With the all-reduced decision both stop after the same step.

The decision is reduced as a CPU tensor over a gloo group, so that on a GPU it never waits for
the steps still queued on the device (checked here by recording what the all-reduce is given).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from ddp import run_ranks
from torch import nn

from cnf_teach.engine import TrainConfig, Trainer

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


@pytest.mark.slow
def test_time_budget_is_one_decision_for_all_ranks(tmp_path: Path) -> None:
    ranks = run_ranks(_SCRIPT, tmp_path)
    assert ranks[0]["step"] == ranks[1]["step"] == 1  # rank 0's spent budget stopped both
    assert ranks[0]["params"] == ranks[1]["params"]


def test_time_budget_flag_never_touches_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget decision is a host-side collective: a CPU flag on the host group, on any device."""
    model = nn.Linear(1, 1)
    trainer = Trainer(model, lambda m, b: (m(b).sum(), {}), [torch.zeros(1, 1)], TrainConfig(steps=1, progress=False))
    seen: list[tuple[torch.Tensor, object]] = []

    def record(t: torch.Tensor, op: object = None, group: object = None) -> None:
        seen.append((t, group))
        t.fill_(1.0)  # another rank's budget is spent

    host_group = object()
    monkeypatch.setattr(dist, "all_reduce", record)
    monkeypatch.setattr(trainer, "_host_group", lambda: host_group)
    trainer.distributed = True
    trainer.device = torch.device("meta")  # any device: the flag must not be put there
    assert trainer._out_of_time(start=0.0, budget=1e12)  # this rank has time, but the group decides
    ((flag, group),) = seen
    assert flag.device.type == "cpu" and group is host_group
