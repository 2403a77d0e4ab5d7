"""Evaluation during training, split across the processes of a DDP run.

With one process an evaluation is simply ``eval_fn(model) -> {"name": value}``. With several
(``torchrun``), letting rank 0 score the whole validation set while the other ranks wait in a
barrier wastes all but one GPU and, on a large set (50,000 ImageNet validation images scored
one by one take minutes), can outlast NCCL's collective timeout. A :class:`ShardedEval`
instead runs on every rank over that rank's :class:`Shard` of the items and returns *totals*,
``{"name": (sum, count)}``; the engine adds the totals of all ranks with one all-reduce and
divides, so every rank gets the same means, equal to those of one process over all items:

$$\\bar v = \\frac{\\sum_{r} \\sum_{i \\in S_r} v_i}{\\sum_r |S_r|},
\\qquad S_r = \\{i : i \\bmod W = r\\}.$$

Means weighted by size (bits/dim over images of different sizes, $\\sum_i b_i D_i / \\sum_i D_i$)
fit the same form: return ``(sum of b_i * D_i, sum of D_i)``.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> values = torch.arange(10.0)
    >>> def mean_value(model: nn.Module, shard: Shard) -> dict[str, tuple[float, float]]:
    ...     mine = values[list(shard.indices(len(values)))]
    ...     return {"value": (float(mine.sum()), len(mine))}
    >>> evaluation = ShardedEval(mean_value)
    >>> evaluation.totals(nn.Identity(), Shard(rank=1, world_size=2))
    {'value': (25.0, 5.0)}
    >>> evaluation(nn.Identity())  # one process: the whole set
    {'value': 4.5}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Subset

__all__ = ["EvalFn", "Shard", "ShardedEval", "Totals", "all_reduce_totals", "means"]

#: ``(sum of the values, number of values)``, or any additive (numerator, denominator) pair.
Totals = tuple[float, float]

#: ``eval_fn(model) -> {"name": value}``: an evaluation that one process runs whole.
EvalFn = Callable[[nn.Module], Mapping[str, float]]


@dataclass(frozen=True)
class Shard:
    """The share of a set that one of ``world_size`` processes evaluates: items ``rank, rank + W, ...``.

    Args:
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: Number of processes.

    Examples:
        >>> from cnf_teach.engine import Shard
        >>> [list(Shard(rank, 3).indices(7)) for rank in range(3)]  # 7 items over 3 processes
        [[0, 3, 6], [1, 4], [2, 5]]
        >>> list(Shard(1, 3).subset("abcdefg"))
        ['b', 'e']
    """

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"a shard needs 0 <= rank < world_size, got rank {self.rank} of {self.world_size}")

    def indices(self, n: int) -> range:
        """This shard's items of ``range(n)`` (interleaved, so shares differ by at most one item)."""
        return range(self.rank, n, self.world_size)

    def subset(self, dataset: Sequence[Any]) -> Subset:
        """This shard's items of ``dataset`` as a ``torch.utils.data.Subset``."""
        return Subset(dataset, list(self.indices(len(dataset))))


@dataclass(frozen=True)
class ShardedEval:
    """An evaluation each DDP rank runs on its own share of the data, combined by the engine.

    Args:
        fn: ``fn(model, shard) -> {"name": (sum, count)}`` over the items of ``shard`` only. Every
            rank must return the same names (a rank with no items returns ``(0.0, 0)``).

    Calling it, ``evaluation(model)``, evaluates the whole set in this one process and returns the
    means, so a :class:`ShardedEval` can stand wherever an ``eval_fn(model)`` is expected.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.engine import Shard, ShardedEval
        >>> x = torch.arange(6.0).reshape(6, 1)
        >>> def squared_error(model, shard):  # totals over this shard's items only
        ...     err = (model(x[list(shard.indices(len(x)))]) - 1).pow(2)
        ...     return {"mse": (float(err.sum()), len(err))}
        >>> evaluation = ShardedEval(squared_error)
        >>> [evaluation.totals(nn.Identity(), Shard(r, 2)) for r in range(2)]  # what two ranks add up
        [{'mse': (11.0, 3.0)}, {'mse': (20.0, 3.0)}]
        >>> evaluation(nn.Identity())  # one process: (11 + 20) / 6
        {'mse': 5.166666666666667}
    """

    fn: Callable[[nn.Module, Shard], Mapping[str, Totals]]

    def totals(self, model: nn.Module, shard: Shard) -> dict[str, Totals]:
        """The totals of ``shard``'s items, checked: names are strings, counts are not negative."""
        out = {}
        for name, pair in self.fn(model, shard).items():
            if not isinstance(name, str) or not isinstance(pair, tuple) or len(pair) != 2:
                raise TypeError(
                    f"a sharded evaluation returns {{name: (sum, count)}} per shard, got {name!r}: {pair!r}; "
                    "wrap a mean-returning eval_fn(model) without ShardedEval"
                )
            total, count = float(pair[0]), float(pair[1])
            if count < 0:
                raise ValueError(f"the count of {name!r} is negative ({count})")
            out[name] = (total, count)
        return out

    def __call__(self, model: nn.Module) -> dict[str, float]:
        return means(self.totals(model, Shard()))


def means(totals: Mapping[str, Totals]) -> dict[str, float]:
    """``{name: sum / count}``; NaN for a name with no items."""
    return {k: (s / c if c else float("nan")) for k, (s, c) in totals.items()}


def all_reduce_totals(totals: Mapping[str, Totals], device: torch.device) -> dict[str, Totals]:
    """Add each name's totals over all ranks (one all-reduce); every rank gets the same result.

    The names are compared across ranks first (a gather of a few strings), so that ranks that
    disagree raise a clear error instead of adding unrelated numbers.

    Raises:
        RuntimeError: the ranks returned different names.
    """
    names = sorted(totals)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, names)
    if any(g != names for g in gathered):
        raise RuntimeError(f"the ranks' sharded evaluations returned different names: {gathered}")
    # float64 on the CPU and CUDA; sums of many bits/dim values keep their digits.
    dtype = torch.float32 if device.type == "mps" else torch.float64
    t = torch.tensor([totals[k] for k in names], dtype=dtype, device=device).reshape(len(names), 2)  # [M, 2]
    dist.all_reduce(t)
    return {k: (float(s), float(c)) for k, (s, c) in zip(names, t.tolist(), strict=True)}
