"""A training step compiles to one graph: no graph break, no host sync, no recompilation.

Every ``bool(tensor)``, ``.item()`` or ``.tolist()`` in the step would force the host to wait
for the device and split the ``torch.compile`` graph. The flows avoid them: actnorm reads a
Python flag instead of its ``initialized`` buffer and is initialised eagerly by
:func:`~cnf_teach.flows.actnorm.data_init` before the first compiled step, and the input checks
skip themselves while compiling. These tests compile the loss with ``fullgraph=True`` (any graph
break raises) through the ``aot_eager`` backend, which also traces the backward pass, and count
the compiled frames over a few optimiser steps: one frame means no recompilation. The
applications' tiny presets are compiled (forward and backward); the tiny concept-level models
of ``tiny_flows`` go through ``torch._dynamo.explain`` (forward and loss).
"""

from __future__ import annotations

import pytest
import torch
from tiny_flows import TinySR, TinyVessel, sr_batch, vessel_batch
from torch._dynamo.testing import CompileCounterWithBackend

from cnf_teach.flows import ActNorm, MultiScaleFlow
from cnf_teach.flows.actnorm import data_init, needs_data_init


def _tiny_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return model.bits_per_dim(y, x).mean()


def _case(kind: str):
    """``(model, batch, loss_fn)`` for the tiny concept models and the applications' tiny presets."""
    if kind == "tiny-sr":
        return TinySR(), sr_batch(), _tiny_loss
    if kind == "tiny-vessel":
        return TinyVessel(), vessel_batch(), _tiny_loss
    if kind == "sr":
        from cnf_teach.super_resolution.config import SRConfig
        from cnf_teach.super_resolution.model import SuperResolutionCNF, sr_loss

        return SuperResolutionCNF(SRConfig.tiny()), sr_batch(2, 32), lambda m, b: sr_loss(m, b)[0]
    from cnf_teach.vessels.config import SegConfig
    from cnf_teach.vessels.model import SegFlow, seg_loss

    x, y = vessel_batch(2, 16)
    return SegFlow(SegConfig.tiny()), {"x": x, "y": y}, lambda m, b: seg_loss(m, b)[0]


def test_data_init_runs_once_and_keeps_the_state_dict_keys() -> None:
    flow = MultiScaleFlow(1, levels=2, steps=1, hidden=4, prior_hidden=4)
    y = torch.randn(3, 1, 8, 8)
    norm = next(m for m in flow.modules() if isinstance(m, ActNorm))
    assert set(norm.state_dict()) == {"bias", "log_scale", "initialized"}  # checkpoints keep loading
    assert needs_data_init(flow)
    flow.eval()
    assert data_init(flow, lambda: flow.log_prob(y))
    assert not flow.training  # the mode is restored
    assert not needs_data_init(flow) and bool(norm.initialized)
    assert not data_init(flow, lambda: flow.log_prob(y))  # nothing left to do

    fresh = MultiScaleFlow(1, levels=2, steps=1, hidden=4, prior_hidden=4)
    fresh.load_state_dict(flow.state_dict())
    assert not needs_data_init(fresh)  # the flag follows the loaded buffer
    fresh.train()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with torch.no_grad():
        fresh.log_prob(5 * y + 3)  # different statistics: an initialisation now would move the actnorms
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


@pytest.mark.parametrize("kind", ["sr", "vessel"])
def test_training_step_compiles_to_one_graph(kind: str) -> None:
    torch._dynamo.reset()
    model, batch, loss_fn = _case(kind)
    model.train()
    assert data_init(model, lambda: loss_fn(model, batch))  # eagerly, before compiling
    counter = CompileCounterWithBackend("aot_eager")
    step = torch.compile(loss_fn, backend=counter, fullgraph=True)  # a graph break raises here
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = step(model, batch)
        loss.backward()  # the backward graph comes from AOT autograd
        opt.step()
        losses.append(loss.detach())
    assert counter.frame_count == 1  # compiled once: no graph break, no recompilation
    assert all(torch.isfinite(v) for v in losses)
    with torch.no_grad():
        eager = loss_fn(model.eval(), batch)
    assert torch.isfinite(eager)


@pytest.mark.parametrize("kind", ["tiny-sr", "tiny-vessel"])
def test_explain_reports_no_graph_break(kind: str) -> None:
    """The concept-level models through ``torch._dynamo.explain``, which lists any break with its reason."""
    torch._dynamo.reset()
    model, batch, loss_fn = _case(kind)
    model.train()
    data_init(model, lambda: loss_fn(model, batch))
    explanation = torch._dynamo.explain(loss_fn)(model, batch)
    assert explanation.graph_break_count == 0, [str(r.reason) for r in explanation.break_reasons]
    assert explanation.graph_count == 1
