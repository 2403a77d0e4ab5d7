"""The training engine: exact resume, NaN stop, atomic checkpoints, schedules, devices and DDP."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from ddp import run_ranks
from torch import nn
from torch.utils.data import TensorDataset

from cnf_teach.engine import (
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_checkpoint,
    make_loader,
    resolve_device,
)
from cnf_teach.flows import MultiScaleFlow


def _flow() -> MultiScaleFlow:
    return MultiScaleFlow(1, levels=1, steps=2, hidden=8)


def _loss(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    (y,) = batch
    v = y + torch.rand_like(y) / 8  # noise from the global generator: resume must restore it
    log_p = model.log_prob(v)
    bpd = -log_p.mean() / (v[0].numel() * 0.6931471805599453)
    return bpd, {"bpd": bpd.item()}


def _data(n: int = 24) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randint(0, 8, (n, 1, 4, 4), generator=g).float() / 8)


def _run(steps: int, out: Path, resume_from: Path | None = None, until: int | None = None) -> Trainer:
    torch.manual_seed(0)
    model = _flow()
    loader = make_loader(_data(), batch_size=5, seed=3)  # 4 batches per epoch: resume lands mid-epoch
    cfg = TrainConfig(
        steps=steps,
        lr=1e-2,
        out_dir=str(out),
        progress=False,
        lr_schedule="cosine",
        warmup_steps=2,
        log_every=1,
    )
    if resume_from is None:
        trainer = Trainer(model, _loss, loader, cfg, task="sr", extra_state={"name": "tiny"})
    else:
        trainer = Trainer.resume(resume_from, model, _loss, loader, cfg, task="sr")
    trainer.fit(until=until)
    return trainer


def test_resume_is_bitwise_exact(tmp_path: Path) -> None:
    full = _run(11, tmp_path / "full")
    assert _run(11, tmp_path / "part", until=6).step == 6  # interrupted at step 6
    resumed = _run(11, tmp_path / "part2", resume_from=tmp_path / "part" / "last.pt")
    assert resumed.step == full.step == 11
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    # The optimizer moments too, and the random state after training.
    sa, sb = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert full.history[-1]["loss"] == resumed.history[-1]["loss"]


def test_checkpoint_contents_and_atomic_write(tmp_path: Path) -> None:
    trainer = _run(3, tmp_path)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["task"] == "sr" and ckpt["step"] == 3 and ckpt["extra"] == {"name": "tiny"}
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "config", "data"}
    assert ckpt["config"]["steps"] == 3
    assert not list(tmp_path.glob("*.tmp"))  # written to a temporary name, then renamed
    assert trainer.history[-1]["step"] == 3 and "bpd" in trainer.history[-1]


def test_other_task_checkpoint_is_rejected(tmp_path: Path) -> None:
    _run(1, tmp_path)
    with pytest.raises(ValueError, match="written by a 'sr' run, not 'seg'"):
        Trainer.resume(tmp_path / "last.pt", _flow(), _loss, [], task="seg")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(bad)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    calls = {"n": 0}

    def loss_fn(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        calls["n"] += 1
        loss, m = _loss(model, batch)
        return (loss * float("nan") if calls["n"] == 5 else loss), m

    torch.manual_seed(0)
    model = _flow()
    cfg = TrainConfig(steps=10, lr=1e-3, out_dir=str(tmp_path), progress=False, checkpoint_every=2)
    trainer = Trainer(model, loss_fn, make_loader(_data(), 5), cfg)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: loss=nan.*last good checkpoint.*last\.pt"):
        trainer.fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4  # the step-4 checkpoint survives
    assert trainer.step == 4  # the bad step was not applied
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_lr_schedule_warmup_and_cosine(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(steps=10, lr=1.0, progress=False, lr_schedule="cosine", warmup_steps=4)
    trainer = Trainer(nn.Linear(1, 1), lambda m, b: (m(b).sum(), {}), [torch.ones(2, 1)], cfg)
    lrs = []
    for _ in range(10):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.train_step(torch.ones(2, 1))
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert (
        lrs[4] == pytest.approx(1.0) and lrs[-1] < 0.1 and all(a >= b for a, b in zip(lrs[3:-1], lrs[4:], strict=True))
    )


def test_grad_clip_bounds_the_update() -> None:
    layer = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(layer.weight)
    cfg = TrainConfig(steps=1, lr=1.0, grad_clip=0.5, progress=False)
    trainer = Trainer(layer, lambda m, b: ((m(b) - 100.0).pow(2).mean(), {}), [torch.ones(1, 1)], cfg)
    out = trainer.train_step(torch.ones(1, 1))
    assert out["grad_norm"] == pytest.approx(200.0)  # reported before clipping
    assert layer.weight.grad.norm().item() == pytest.approx(0.5, rel=1e-4)


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="use auto, cpu, cuda or mps"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="exp")


_DDP_SCRIPT = textwrap.dedent(
    """
    import json, sys, torch, torch.distributed as dist
    from torch import nn
    from torch.utils.data import TensorDataset
    from cnf_teach.engine import TrainConfig, Trainer, make_loader

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    data = TensorDataset(x, 3 * x + 1)
    model = nn.Linear(1, 1)
    def loss_fn(m, batch):
        xb, yb = batch
        loss = (m(xb) - yb).pow(2).mean()
        return loss, {"mse": loss.detach()}
    loader = make_loader(data, batch_size=4, seed=0, shuffle=False)
    cfg = TrainConfig(steps=3, lr=0.1, grad_clip=None, device="cpu", progress=False, out_dir=sys.argv[1])
    trainer = Trainer(model, loss_fn, loader, cfg)
    trainer.fit()
    out = {"rank": dist.get_rank(), "world": dist.get_world_size(),
           "params": [p.detach().tolist() for p in model.parameters()]}
    with open(f"{sys.argv[1]}/rank{dist.get_rank()}.json", "w") as f:
        json.dump(out, f)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_ddp_two_processes_gloo_match_single_process(tmp_path: Path) -> None:
    ranks = run_ranks(_DDP_SCRIPT, tmp_path)
    assert ranks[0]["world"] == 2 and ranks[0]["params"] == ranks[1]["params"]  # replicas stay identical
    # Two ranks with 4 samples each (DistributedSampler interleaves) = one process with those 8 samples.
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 16).unsqueeze(1)
    model = nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for step in range(3):
        idx = torch.tensor([8 * (step % 2) + i for i in range(8)])
        loss = (model(x[idx]) - (3 * x[idx] + 1)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ref = [p.detach().tolist() for p in model.parameters()]
    assert torch.allclose(torch.tensor(ranks[0]["params"][0]), torch.tensor(ref[0]), atol=1e-6)
    assert torch.allclose(torch.tensor(ranks[0]["params"][1]), torch.tensor(ref[1]), atol=1e-6)
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3  # rank 0 alone writes the checkpoint


def test_time_budget_stops_and_checkpoints(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(steps=10**6, lr=1e-3, out_dir=str(tmp_path), progress=False, max_seconds=0.0)
    trainer = Trainer(_flow(), _loss, make_loader(_data(), 5), cfg)
    metrics = trainer.fit()
    assert trainer.step == 1 and metrics["step"] == 1  # one step, then the (zero) budget is spent
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1


def test_nan_step_skipped_on_the_device_and_reported_at_the_next_log(tmp_path: Path) -> None:
    """The step does not read its loss on the host: a NaN step raises a flag on the device, no later
    update is applied, and the next log reports the first bad step and sets the trainer back to it."""
    calls = {"n": 0}

    def loss_fn(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        calls["n"] += 1
        (y,) = batch
        bpd = -model.log_prob(y + 1 / 16).mean() / y[0].numel()
        return (bpd * float("nan") if calls["n"] == 3 else bpd), {"bpd": bpd.detach()}

    def trained(steps: int, log_every: int) -> tuple[Trainer, MultiScaleFlow]:
        calls["n"] = 0
        torch.manual_seed(0)
        model = _flow()
        cfg = TrainConfig(steps=steps, lr=1e-2, progress=False, log_every=log_every)
        return Trainer(model, loss_fn, make_loader(_data(), 5, seed=3), cfg), model

    good, good_model = trained(2, 0)
    good.fit()  # two good steps
    trainer, model = trained(8, 6)
    checks = {"n": 0}
    check = trainer._check_diverged

    def counted() -> None:
        checks["n"] += 1
        check()

    trainer._check_diverged = counted  # type: ignore[method-assign]
    with pytest.raises(TrainingDiverged, match=r"diverged at step 3: loss=nan"):
        trainer.fit()
    assert calls["n"] == 6 and checks["n"] == 1  # six steps ran; the host looked once, at the log of step 6
    assert trainer.step == 2 and trainer.optimizer.param_groups[0]["lr"] == good.optimizer.param_groups[0]["lr"]
    for p, q in zip(model.parameters(), good_model.parameters(), strict=True):
        assert torch.equal(p, q)  # steps 3-6 applied nothing
    for p, q in zip(trainer.optimizer.state.values(), good.optimizer.state.values(), strict=True):
        assert all(torch.equal(p[k], q[k]) for k in ("step", "exp_avg", "exp_avg_sq"))
