"""What the processes of a DDP run decide and measure together: metric means, the time budget, evaluation.

Under ``torchrun`` every process trains on its share of each batch; DDP averages the gradients.
The rest is agreed here: the step's metrics are averaged over the ranks (one all-reduce, on the
device); the wall-clock budget is decided by whichever rank's clock runs out first (a flag
all-reduced over a gloo group of the hosts, so that every rank stops after the same step); and
an evaluation is a :class:`~cnf_teach.engine.ShardedEval` that every rank runs on its share,
or a plain ``eval_fn(model)`` that rank 0 runs while the others wait.

:class:`Collective` is the part of :class:`~cnf_teach.engine.Trainer` that does this; alone
(one process) each of its methods is the obvious local one.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from .evaluation import EvalFn, Shard, ShardedEval, all_reduce_totals, means

__all__ = ["Collective"]

log = logging.getLogger(__name__)


class Collective:
    """The DDP reductions of :class:`~cnf_teach.engine.Trainer`: metric means, the time budget, evaluation.

    A part of the trainer (it is one of its base classes), not used alone.

    Examples:
        >>> from torch import nn
        >>> from cnf_teach.engine import ShardedEval, TrainConfig, Trainer
        >>> def totals(model, shard):  # {name: (sum, count)} over this rank's share
        ...     return {"score": (6.0, 3)}
        >>> trainer = Trainer(nn.Linear(2, 1), lambda m, b: (m(b).mean(), {}), [],
        ...                   TrainConfig(steps=1, device="cpu", progress=False), eval_fn=ShardedEval(totals))
        >>> trainer.evaluate()  # one process: its own totals
        {'score': 2.0}
        >>> trainer._out_of_time(start=0.0, budget=1e12)
        False
    """

    model: nn.Module
    device: torch.device
    eval_fn: EvalFn | ShardedEval | None
    distributed: bool
    rank: int
    world_size: int
    step: int
    last_eval: dict[str, float]
    _warned_unsharded = False
    _host_pg: Any = None

    def _out_of_time(self, start: float, budget: float) -> bool:
        """Whether the wall-clock budget is spent; under DDP any rank's clock decides for all.

        The decision is all-reduced (max), so that every rank stops after the same step and none
        waits for the others in a collective that never comes. The flag is a CPU tensor reduced
        over a gloo group (:meth:`_host_group`): the hosts agree without waiting for the device,
        which is still running the steps queued before.
        """
        spent = time.perf_counter() - start >= budget
        if not self.distributed:
            return spent
        flag = torch.tensor([float(spent)])  # on the CPU: reading it never synchronises a GPU
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._host_group())
        return bool(flag.item())

    def _host_group(self) -> Any:
        """A gloo process group for decisions the hosts take together (the default group on the CPU).

        Created on first use, which every rank reaches at the same step (a collective call).
        """
        if self._host_pg is None:
            self._host_pg = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        return self._host_pg

    def _reduce(self, values: Tensor) -> Tensor:
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def evaluate(self) -> dict[str, float]:
        """Evaluate with the model in eval mode (no gradients); every rank returns the same metrics.

        A :class:`~.evaluation.ShardedEval` runs on every rank over its :class:`~.evaluation.Shard`
        and the totals are all-reduced. A plain ``eval_fn(model)`` runs on rank 0 while the other
        ranks wait in a barrier (a warning says so once); its metrics are then sent to them.
        """
        if self.eval_fn is None:
            return {}
        sharded = isinstance(self.eval_fn, ShardedEval)
        if self.distributed and not sharded and not self._warned_unsharded:
            self._warned_unsharded = True
            if self.rank == 0:
                log.warning(
                    "eval_fn runs on rank 0 alone while %d other ranks wait; wrap it in ShardedEval to split it",
                    self.world_size - 1,
                )
        result: dict[str, float] = {}
        self.model.eval()
        try:
            with torch.no_grad():
                if sharded:
                    totals = self.eval_fn.totals(self.model, Shard(self.rank, self.world_size))
                    result = means(all_reduce_totals(totals, self.device) if self.distributed else totals)
                elif self.rank == 0:
                    result = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        finally:
            self.model.train()
        if self.distributed and not sharded:
            shared: list[Any] = [result]
            dist.broadcast_object_list(shared, src=0)  # also the barrier: every rank waits for rank 0
            result = shared[0]
        if self.rank == 0:
            log.info("step %d eval: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in result.items()))
        self.last_eval = result
        return result
