"""Evaluation during training (:mod:`cnf_teach.engine.evaluation`): shards, totals, and DDP.

Under DDP a :class:`ShardedEval` runs on every rank over its share and the engine all-reduces
the totals; the two-process test checks that the result equals one process's over the whole
set, that each rank scored only its share, that a plain ``eval_fn`` runs on rank 0 alone with
its result sent to every rank, and that ranks returning different names fail on every rank
instead of adding unrelated numbers.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from ddp import run_ranks
from torch import nn

from cnf_teach.engine import Shard, ShardedEval, TrainConfig, Trainer


@pytest.mark.parametrize("n", [0, 1, 5, 7])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_partition_the_items(n: int, world: int) -> None:
    shares = [list(Shard(r, world).indices(n)) for r in range(world)]
    assert sorted(i for share in shares for i in share) == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced
    data = list(range(10, 10 + n))
    assert [list(Shard(r, world).subset(data)) for r in range(world)] == [[10 + i for i in s] for s in shares]


def test_a_shard_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        Shard(2, 2)
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        Shard(0, 0)


def test_sharded_eval_in_one_process_is_the_whole_set_and_checks_its_totals() -> None:
    values = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0])
    evaluation = ShardedEval(
        lambda m, shard: {"v": (float(values[list(shard.indices(5))].sum()), len(shard.indices(5)))}
    )
    assert evaluation(nn.Identity()) == {"v": pytest.approx(31 / 5)}
    assert evaluation.totals(nn.Identity(), Shard(1, 2)) == {"v": (10.0, 2.0)}
    with pytest.raises(TypeError, match=r"\(sum, count\)"):  # a mean where totals were due
        ShardedEval(lambda m, shard: {"v": 6.2}).totals(nn.Identity(), Shard())
    with pytest.raises(ValueError, match="negative"):
        ShardedEval(lambda m, shard: {"v": (1.0, -1)}).totals(nn.Identity(), Shard())
    assert ShardedEval(lambda m, shard: {"v": (0.0, 0)})(nn.Identity())["v"] != pytest.approx(0.0)  # NaN: no items


def _linear_trainer(eval_fn: object) -> tuple[Trainer, nn.Module]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 1), nn.Dropout(0.5))
    x = torch.linspace(-1, 1, 8).unsqueeze(1)
    batches = [x[:4], x[4:]]

    def loss_fn(m: nn.Module, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return m(b).pow(2).mean(), {}

    cfg = TrainConfig(steps=4, eval_every=2, lr=0.01, progress=False)
    return Trainer(model, loss_fn, batches, cfg, eval_fn=eval_fn), model


def test_trainer_runs_a_sharded_eval_in_eval_mode_without_gradients() -> None:
    seen: list[tuple[bool, bool]] = []
    x = torch.linspace(-1, 1, 9).unsqueeze(1)

    def totals(m: nn.Module, shard: Shard) -> dict[str, tuple[float, float]]:
        seen.append((m.training, torch.is_grad_enabled()))
        y = m(x[list(shard.indices(len(x)))])
        return {"sq": (float(y.pow(2).sum()), len(y))}

    trainer, model = _linear_trainer(ShardedEval(totals))
    metrics = trainer.fit()
    assert seen == [(False, False), (False, False)]  # step 2 and the end; dropout off, no graph
    assert model.training  # back to training mode afterwards
    with torch.no_grad():
        expected = float(model.eval()(x).pow(2).mean())  # dropout off: deterministic
    assert metrics["eval_sq"] == pytest.approx(expected, rel=1e-6)
    assert trainer.last_eval == {"sq": pytest.approx(expected, rel=1e-6)}


def test_trainer_still_takes_a_plain_eval_fn() -> None:
    trainer, _ = _linear_trainer(lambda m: {"answer": torch.tensor(42.0)})
    assert trainer.fit()["eval_answer"] == 42.0


_DDP_EVAL = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from cnf_teach.engine import ShardedEval, TrainConfig, Trainer
    from cnf_teach.super_resolution import SRConfig, build_sr_model, dataset_bits_totals, sr_loss

    torch.manual_seed(0)
    model = build_sr_model(SRConfig.tiny(), "baseline")
    g = torch.Generator().manual_seed(1)
    hr = torch.randint(0, 256, (3, 3, 32, 40), generator=g, dtype=torch.uint8)
    data = [(h[:, ::2, ::2].contiguous(), h) for h in hr]
    own = {}

    def totals(m, shard):
        own["bpd"] = dataset_bits_totals(m, data, crops=7, crop_size=16, seed=3, rank=shard.rank,
                                         world_size=shard.world_size)
        return {"bpd": own["bpd"]}

    trainer = Trainer(model, sr_loss, [], TrainConfig(steps=1, device="cpu", progress=False), ShardedEval(totals))
    out = {"sharded": trainer.evaluate(), "own": own["bpd"]}
    calls = []
    trainer.eval_fn = lambda m: (calls.append(1), {"rank_seen": float(dist.get_rank())})[1]
    out["plain"] = trainer.evaluate()
    out["plain_calls"] = len(calls)
    trainer.eval_fn = ShardedEval(lambda m, shard: {f"name_of_rank_{shard.rank}": (1.0, 1)})
    try:
        trainer.evaluate()
        out["mismatch"] = None
    except RuntimeError as err:
        out["mismatch"] = str(err)
    with open(f"{sys.argv[1]}/rank{dist.get_rank()}.json", "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_ddp_evaluation_is_split_across_ranks_and_combined(tmp_path: Path) -> None:
    from cnf_teach.super_resolution import SRConfig, build_sr_model, dataset_bits_per_dim

    ranks = run_ranks(_DDP_EVAL, tmp_path)
    # Each rank scored its own share of the 7 crops (4 and 3 crops of 3 * 16 * 16 dims) ...
    assert [r["own"][1] for r in ranks] == [4 * 768, 3 * 768]
    # ... and both got the mean over all 7, equal to one process scoring everything.
    torch.manual_seed(0)
    model = build_sr_model(SRConfig.tiny(), "baseline").eval()
    g = torch.Generator().manual_seed(1)
    hr = torch.randint(0, 256, (3, 3, 32, 40), generator=g, dtype=torch.uint8)
    data = [(h[:, ::2, ::2].contiguous(), h) for h in hr]
    whole = dataset_bits_per_dim(model, data, crops=7, crop_size=16, seed=3)
    assert ranks[0]["sharded"] == ranks[1]["sharded"]
    assert ranks[0]["sharded"]["bpd"] == pytest.approx(whole, rel=1e-6)
    # A plain eval_fn: rank 0 alone runs it, every rank gets its result.
    assert [r["plain_calls"] for r in ranks] == [1, 0]
    assert ranks[0]["plain"] == ranks[1]["plain"] == {"rank_seen": 0.0}
    # Different names on different ranks: a clear error on both, no silent sum.
    for r in ranks:
        assert r["mismatch"] and "different names" in r["mismatch"]
