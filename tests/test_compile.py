"""Compiled training (``TrainConfig(compile=True)``) gives the eager losses, on the CPU too.

Two trainers start from the same weights and train on the same batches with the same random
state (the dequantization noise), one eager and one compiled; their losses and final weights
agree within float tolerance. ``aot_eager`` traces the forward and backward graphs exactly as
Inductor receives them but runs them with PyTorch's own kernels: a quick check of the engine's
wiring. The Inductor test generates and compiles C++ code (about a minute on a busy 2-core
machine), so it is marked slow and skipped, with the reason, where there is no C++ compiler.
"""

from __future__ import annotations

import logging

import pytest
import torch
from tiny_flows import TinySR, sr_batch

from cnf_teach.engine import TrainConfig, Trainer
from cnf_teach.engine.devices import compile_unavailable
from cnf_teach.flows import data_init


def _loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    x, y = batch
    bpd = model.bits_per_dim(y, x).mean()
    return bpd, {"bpd": bpd.detach()}


def _train(compiled: bool, backend: str, steps: int = 3) -> tuple[list[float], dict[str, torch.Tensor], Trainer]:
    torch.manual_seed(0)
    model = TinySR()  # conditioner, multi-scale flow, uniform dequantization
    batches = [sr_batch(4, 16, generator=torch.Generator().manual_seed(i)) for i in range(steps)]
    config = TrainConfig(
        steps=steps, lr=1e-3, device="cpu", progress=False, compile=compiled, compile_backend=backend, grad_clip=None
    )
    # Actnorm's data-dependent initialisation before either trainer starts: the compiled trainer
    # runs it eagerly in an extra forward pass, which would draw dequantization noise of its own.
    data_init(model, lambda: _loss(model, batches[0]))
    trainer = Trainer(model, _loss, [], config)
    torch.manual_seed(1)  # the same dequantization noise in both runs
    losses = [trainer.train_step(batch)["loss"] for batch in batches]
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}, trainer


def _compare(backend: str, rtol: float) -> None:
    eager_losses, eager_state, _ = _train(False, backend)
    losses, state, trainer = _train(True, backend)
    assert trainer.use_compile  # really compiled, not the eager fallback
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(eager_losses), rtol=rtol, atol=0)
    assert eager_losses[-1] != eager_losses[0]  # the weights moved between the steps compared
    for name, value in eager_state.items():
        torch.testing.assert_close(state[name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_compiled_training_traces_to_the_eager_losses() -> None:
    _compare("aot_eager", rtol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(
    compile_unavailable(torch.device("cpu")) is not None,
    reason=f"torch.compile cannot generate CPU code here: {compile_unavailable(torch.device('cpu'))}",
)
def test_inductor_training_on_the_cpu_keeps_the_eager_losses() -> None:
    import torch._inductor.config as inductor_config

    # Inductor draws random numbers with its own generator unless told to use PyTorch's: with
    # it, both runs see the same dequantization noise and the losses can be compared. The config's
    # own patch() restores it afterwards (monkeypatch's undo left the option deleted, and every
    # later compilation in the session failed).
    with inductor_config.patch(fallback_random=True):
        _compare("inductor", rtol=1e-5)


def test_without_a_compiler_training_falls_back_to_eager(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    assert "no C++ compiler" in (compile_unavailable(torch.device("cpu")) or "")
    config = TrainConfig(steps=1, device="cpu", progress=False, compile=True)
    with caplog.at_level(logging.WARNING, logger="cnf_teach.engine.trainer"):
        trainer = Trainer(torch.nn.Linear(2, 1), lambda m, b: (m(b).pow(2).mean(), {}), [], config)
    assert not trainer.use_compile
    assert "no C++ compiler" in caplog.text and "training eagerly" in caplog.text
    assert trainer.train_step(torch.ones(3, 2))["loss"] >= 0


def test_compile_is_off_by_default_and_stored_with_its_backend() -> None:
    config = TrainConfig()
    assert config.compile is False and config.compile_backend == "inductor"
    assert TrainConfig.from_dict({"compile": True}).compile_backend == "inductor"  # older checkpoints


@pytest.mark.parametrize("command", [["sr", "train"], ["seg", "train", "--out", "run"]])
def test_train_commands_take_compile_and_no_compile(command: list[str]) -> None:
    from cnf_teach.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([*command, "--compile"]).compile is True
    assert parser.parse_args([*command, "--no-compile"]).compile is False
    assert parser.parse_args(command).compile is None  # neither: compile_choice decides


def test_compile_choice_compiles_long_runs_unless_told_not_to() -> None:
    from cnf_teach.commands.common import COMPILE_AUTO_STEPS, compile_choice

    cpu = torch.device("cpu")
    assert compile_choice(None, 200, cpu) is False  # a notebook-sized run: compiling costs more than it saves
    assert compile_choice(None, COMPILE_AUTO_STEPS, cpu) is (compile_unavailable(cpu) is None)
    assert compile_choice(False, 10 * COMPILE_AUTO_STEPS, cpu) is False  # the opt-out
    assert compile_choice(True, 10, cpu) is True  # asked for: the engine falls back with a warning if it must
    assert compile_choice(None, 10 * COMPILE_AUTO_STEPS, torch.device("mps")) is False
