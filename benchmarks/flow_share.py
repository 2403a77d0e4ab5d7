"""Where a training step's time goes: the networks' share and the flow's own share.

A training step (forward $-\\log P(y \\mid x)$ in bits/dim, averaged over the batch, plus
backward) of a CNF spends its time in two kinds of work:

- the **networks**: the conditioner $g(x)$ (RRDB or VGG), the coupling networks, the split and
  top prior networks, the conditional actnorm's linear map and the dequantizer's networks;
- the **flow's own work**: actnorm, assembling the 1x1 convolutions' $W$ and applying them,
  squeeze, the split bookkeeping, the couplings' scale and shift, the dequantizer's bijections,
  the Gaussian log-densities and the log-determinant sums, each forward and backward.

How the split is measured: the same model is timed twice per repetition, interleaved
(``common.py``). The ``full`` step is the ordinary one. In the ``flow`` step every network
returns, instead of running, the output it gave on the same batch in a recording pass, as a
leaf tensor that requires a gradient; so the flow does all of its own work, forward and
backward (including the gradient it sends to the networks' outputs), and the networks do none
of theirs (neither their forward nor their backward). The flow's share is ``flow / full``, the
median of the per-repetition ratios; the networks' share is the rest. Which modules count as
networks: every module with parameters that is not defined in ``cnf_teach.flows``,
``cnf_teach.dequantization``, ``cnf_teach.distributions`` or the applications' model classes
(their top-level modules), nor a ``ModuleList``; each is replaced whole (their submodules with
them). The flow's gradient still reaches its own parameters (actnorm, the 1x1 convolutions).
The cached outputs are constants, so this slightly *under*states one thing: the gradient the
networks would send back to the flow's activations through their inputs ($y_a$ of each
coupling) is not added.

Models: the SR CNF of :mod:`cnf_teach.super_resolution` (``SRConfig.tiny()`` and ``small()``,
their patch and batch) and the binary-dequantized vessel CNF of :mod:`cnf_teach.vessels`
(``SegConfig.tiny()`` and ``small()``, batch of the config on ``--seg-size`` pixel crops, 96 by
default: the size the shipped vessel models train at). ``--profile`` adds, per model, the
operators of the flow step that took the most time (``torch.profiler``, self CPU time).

Usage::

    python benchmarks/flow_share.py [--smoke] [--json OUT] [--threads 1] [--models sr-tiny,seg-tiny] [--profile]

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1 and §5.2.
"""

from __future__ import annotations

import argparse
import logging
import statistics
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from common import (
    add_common_args,
    chosen_models,
    interleaved_times,
    machine_info,
    print_table,
    ratio_quartiles,
    resolve_device,
    synchronize,
    write_json,
)
from torch import Tensor, nn

log = logging.getLogger("benchmarks.flow_share")

MODELS = ("sr-tiny", "sr-small", "seg-tiny", "seg-small")
#: Packages whose modules are the flow (or hold it); every other module with parameters is a network.
FLOW_PACKAGES = (
    "cnf_teach.flows",
    "cnf_teach.dequantization",
    "cnf_teach.distributions",
    "cnf_teach.super_resolution",
    "cnf_teach.vessels",
)
#: Methods through which a network is called (VGG's all_features besides forward).
NETWORK_METHODS = ("forward", "all_features")


def is_flow_module(module: nn.Module) -> bool:
    """Whether ``module`` is part of the flow's own machinery (descended into) rather than a network."""
    return isinstance(module, nn.ModuleList) or type(module).__module__.startswith(FLOW_PACKAGES)


def find_networks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The networks of ``model``: the outermost modules with parameters that are not flow modules."""
    found: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if is_flow_module(child):
                visit(path, child)
            elif any(True for _ in child.parameters()):
                found.append((path, child))

    visit("", model)
    return found


def _leaf(value: Any) -> Any:
    """A detached copy of a network output (nested lists/tuples of tensors) as gradient-requiring leaves."""
    if isinstance(value, Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_leaf(v) for v in value)
    return value


def _leaves(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _leaves(v)]
    return []


class NetworkCache:
    """Records every network's outputs on one step, then replays them instead of running the networks.

    Args:
        model: The model whose networks (see :func:`find_networks`) are patched.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from cnf_teach.flows import AffineCoupling
        >>> coupling = AffineCoupling(4, hidden=8)
        >>> cache = NetworkCache(coupling)
        >>> [name for name, _ in cache.networks]
        ['net']
        >>> y = torch.randn(2, 4, 4, 4)
        >>> cache.mode = "record"; z, _ = coupling(y)
        >>> cache.mode = "replay"; torch.equal(coupling(y)[0], z)
        True
    """

    def __init__(self, model: nn.Module) -> None:
        self.networks = find_networks(model)
        self.mode = "run"  # "run": networks run; "record": run and keep outputs; "replay": return them
        self._records: dict[tuple[int, str], list[Any]] = {}
        self._position: dict[tuple[int, str], int] = {}
        self._depth = 0  # > 0 inside a network: its inner calls are not recorded separately
        for _, net in self.networks:
            for method in NETWORK_METHODS:
                if hasattr(type(net), method):
                    setattr(net, method, self._wrap(net, method, getattr(net, method)))

    def _wrap(self, net: nn.Module, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
        key = (id(net), method)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.mode == "replay" and self._depth == 0:
                position = self._position.get(key, 0)
                self._position[key] = position + 1
                return self._records[key][position]
            self._depth += 1
            try:
                out = original(*args, **kwargs)
            finally:
                self._depth -= 1
            if self.mode == "record" and self._depth == 0:
                self._records.setdefault(key, []).append(_leaf(out))
            return out

        return call

    def start_step(self) -> None:
        """Rewind the replay and drop the cached outputs' gradients (as ``zero_grad`` does for parameters)."""
        self._position.clear()
        for outputs in self._records.values():
            for out in outputs:
                for t in _leaves(out):
                    t.grad = None

    def record(self, step: Callable[[], None]) -> None:
        """Run ``step`` once with the networks, keeping their outputs."""
        self._records.clear()
        self.mode = "record"
        try:
            step()
        finally:
            self.mode = "run"


def build_case(name: str, smoke: bool, seg_size: int, device: torch.device) -> tuple[nn.Module, Callable[[], Tensor]]:
    """``(model, loss())`` for one of :data:`MODELS` on a fixed random batch."""
    family, size = name.split("-")
    if family == "sr":
        from cnf_teach.super_resolution import SRConfig, SuperResolutionCNF
        from cnf_teach.super_resolution.model import sr_loss

        cfg = SRConfig.preset(size)
        if smoke:
            cfg = replace(cfg, steps=2, patch=16, batch_size=2)
        model = SuperResolutionCNF(cfg).to(device)
        hr = torch.randint(0, 256, (cfg.batch_size, 3, cfg.patch, cfg.patch), dtype=torch.uint8, device=device)
        lr = nn.functional.avg_pool2d(hr.float(), cfg.scale).round().to(torch.uint8)
        return model, lambda: sr_loss(model, (lr, hr))[0]
    if family == "seg":
        from cnf_teach.vessels import SegConfig, SegFlow
        from cnf_teach.vessels.model import seg_loss

        cfg = getattr(SegConfig, size)()
        pixels = 16 if smoke else seg_size
        batch = 2 if smoke else cfg.batch_size
        model = SegFlow(cfg, "binary").to(device)
        x = torch.rand(batch, 3, pixels, pixels, device=device)
        y = (x[:, 1:2] + 0.1 * torch.randn(batch, 1, pixels, pixels, device=device) > 0.6).float()
        return model, lambda: seg_loss(model, {"x": x, "y": y})[0]
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(MODELS)}")


def measure(
    name: str, device: torch.device, reps: int, warmup: int, smoke: bool, seg_size: int, profile: bool
) -> dict[str, Any]:
    """Time the full step and the flow-only step of one model, interleaved; return its row."""
    model, loss = build_case(name, smoke, seg_size, device)
    model.train()
    cache = NetworkCache(model)

    def full() -> None:
        model.zero_grad(set_to_none=True)
        loss().backward()

    def flow_only() -> None:
        model.zero_grad(set_to_none=True)
        cache.start_step()
        cache.mode = "replay"
        try:
            loss().backward()
        finally:
            cache.mode = "run"

    full()  # actnorm's data-dependent initialisation, before anything is recorded
    cache.record(full)
    times = interleaved_times({"full": full, "flow": flow_only}, device, reps, warmup)
    ratios = [f / a for f, a in zip(times["flow"], times["full"], strict=True)]
    row: dict[str, Any] = {
        "model": name,
        "networks": len(cache.networks),
        "parameters": sum(p.numel() for p in model.parameters()),
        "full_s": statistics.median(times["full"]),
        "flow_s": statistics.median(times["flow"]),
        "flow_share": statistics.median(ratios),
        "flow_share_q1_q3": ratio_quartiles(times["flow"], times["full"]),
        "reps": reps,
    }
    if profile:
        row["flow_ops"] = profile_ops(flow_only, device)
    return row


def profile_ops(step: Callable[[], None], device: torch.device, top: int = 12) -> list[dict[str, Any]]:
    """The operators that took the most self CPU time over a few flow-only steps."""
    from torch.profiler import ProfilerActivity, profile

    synchronize(device)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            step()
    synchronize(device)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {"op": e.key, "calls": e.count // 3, "self_share": e.self_cpu_time_total / total}
        for e in events[:top]
        if e.self_cpu_time_total > 0
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--seg-size", type=int, default=96, help="side of the vessel crops (default 96)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also list the flow step's costliest operators")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = chosen_models(args.models, MODELS)

    rows = []
    for name in names:
        torch.manual_seed(args.seed)
        rows.append(measure(name, device, args.reps, args.warmup, args.smoke, args.seg_size, args.profile))
    print(f"\nTraining step (forward + backward) on {device}, {args.reps} interleaved repetitions")
    print_table(
        rows,
        ["model", "parameters", "networks", "full_s", "flow_s", "flow_share", "flow_share_q1_q3"],
        "The flow's own share of a training step (flow_s / full_s, median)",
    )
    for row in rows:
        if "flow_ops" in row:
            title = f"{row['model']}: the flow step's top operators"
            print_table(row["flow_ops"], ["op", "calls", "self_share"], title)
    result = {"machine": machine_info(device), "smoke": args.smoke, "rows": rows}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
