"""How the super-resolution flow's cost grows: with the image size, with depth, and with the 1x1 conv's width.

Three sweeps, each printed as a table and written to JSON:

1. ``hr_size``: training-step time and peak memory of the SR flow (2x: $x$ at half
   the resolution of $y$) at HR sizes 32, 64, 128, at $K$ = 8 steps per level.
2. ``steps``: the same at HR 64 against $K$ (2, 4, 8, 16).
3. ``conv1x1``: the invertible 1x1 convolution's $W$ and $\\log|\\det W|$, forward and
   backward, by ``slogdet`` ($O(C^3)$ LU factorisation of $W$ every step) against the
   LU parametrisation ($\\log|\\det W| = \\sum\\log|s|$, but $W = PLU$ must still be
   assembled), for $C$ from 8 to 512; and the whole layer on a ``[4, C, 8, 8]`` input.

The SR flow is the paper's flow part (Table 6 of Winkler et al. 2019: $L = 2$, coupling
net conv3x3(512)-ReLU-conv1x1(512)-ReLU-conv3x3, conditioning features of 128 channels
concatenated to every coupling and prior input) behind a small convolutional conditioner
standing in for the RRDB, whose cost does not change with $K$ and only linearly with the
size. A training step is forward ($-\\log p(y \\mid x)$ averaged over the batch) plus
backward. Peak memory: see ``common.py`` (CUDA allocator peak; on CPU the RSS growth
over the first step in a fresh process, one process per configuration).

Usage::

    python benchmarks/scaling.py [--smoke] [--json OUT] [--device auto|cpu|cuda]

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, Table 6.
    Kingma, Dhariwal. Glow. NeurIPS 2018, §3.2 (LU-decomposed 1x1 convolution).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from common import (
    add_common_args,
    interleaved_times,
    machine_info,
    median_ratio,
    peak_memory_of,
    print_table,
    resolve_device,
    write_json,
)
from torch import Tensor, nn

from cnf_teach.flows import InvertibleConv1x1, MultiScaleFlow
from cnf_teach.nets import ConvConditioner

log = logging.getLogger("benchmarks.scaling")


@dataclass
class FlowSize:
    """One configuration of the SR flow."""

    hr: int = 64
    steps: int = 8
    levels: int = 2
    hidden: int = 512
    cond_channels: int = 128
    batch: int = 2


def build_sr_flow(cfg: FlowSize) -> nn.Module:
    """The SR CNF's flow (paper sizes unless ``cfg`` says otherwise) with a small conditioner."""
    conditioner = ConvConditioner(3, cfg.cond_channels, cfg.levels, upscale=2, hidden=64)
    return MultiScaleFlow(
        3,
        levels=cfg.levels,
        steps=cfg.steps,
        conditioner=conditioner,
        cond_channels=cfg.cond_channels,
        hidden=cfg.hidden,
    )


def _data(cfg: FlowSize, device: torch.device) -> tuple[Tensor, Tensor]:
    y = torch.rand(cfg.batch, 3, cfg.hr, cfg.hr, device=device) - 0.5  # HR, dequantized
    x = torch.rand(cfg.batch, 3, cfg.hr // 2, cfg.hr // 2, device=device) - 0.5  # LR
    return y, x


def _step_fn(model: nn.Module, y: Tensor, x: Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        (-model.log_prob(y, x)).mean().backward()

    return step


def memory_worker(cfg: FlowSize, device: torch.device, seed: int) -> int:
    """Peak bytes of one training step (run in a fresh process on CPU)."""
    torch.manual_seed(seed)
    model = build_sr_flow(cfg).to(device).train()
    y, x = _data(cfg, device)
    with torch.no_grad():
        model.log_prob(y, x)  # actnorm initialisation, outside the measured step
    return peak_memory_of(_step_fn(model, y, x), device)


def peak_memory(cfg: FlowSize, device: torch.device, seed: int, threads: int, cache: dict[str, int]) -> int:
    """:func:`memory_worker` in a fresh Python process, so the RSS high-water mark is the step's."""
    key = json.dumps(asdict(cfg), sort_keys=True)
    if key in cache:  # the sweeps share their base configuration
        return cache[key]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", json.dumps(asdict(cfg))]
    cmd += ["--device", device.type, "--seed", str(seed), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cache[key] = int(out.strip().splitlines()[-1])
    return cache[key]


def sweep_flow(
    cfgs: list[FlowSize],
    label: str,
    device: torch.device,
    reps: int,
    warmup: int,
    seed: int,
    threads: int,
    memory_cache: dict[str, int],
) -> list[dict]:
    """Time every configuration (interleaved) and measure its peak memory (one process each)."""
    steps = {}
    models = []
    for cfg in cfgs:
        torch.manual_seed(seed)
        model = build_sr_flow(cfg).to(device).train()
        y, x = _data(cfg, device)
        models.append(model)
        steps[f"{label}={getattr(cfg, label)}"] = _step_fn(model, y, x)
    times = interleaved_times(steps, device, reps, warmup)
    rows = []
    for cfg, model, (name, ts) in zip(cfgs, models, times.items(), strict=True):
        mem = peak_memory(cfg, device, seed, threads, memory_cache)
        rows.append(
            {
                "sweep": label,
                "hr": cfg.hr,
                "steps": cfg.steps,
                "parameters": sum(p.numel() for p in model.parameters()),
                "step_s": statistics.median(ts),
                "step_min_s": min(ts),
                "peak_mib": mem / 2**20,
                "reps": reps,
            }
        )
        log.info("%s: %.3f s, %.0f MiB", name, rows[-1]["step_s"], rows[-1]["peak_mib"])
    return rows


def _param_step(layer: InvertibleConv1x1, grad_w: Tensor) -> Callable[[], None]:
    """$W$ and $\\log|\\det W|$, forward and backward (``grad_w`` stands in for the output's gradient)."""

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        weight, logabsdet = layer.weight_and_logabsdet()
        (logabsdet + (weight * grad_w).sum()).backward()

    return run


def _layer_step(layer: InvertibleConv1x1, y: Tensor) -> Callable[[], None]:
    """The whole layer on ``y``, forward and backward."""

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        z, logdet = layer(y)
        (z.square().mean() - logdet.mean()).backward()

    return run


def sweep_conv1x1(channels: list[int], device: torch.device, reps: int, warmup: int, seed: int) -> list[dict]:
    """slogdet against LU: $W$ and $\\log|\\det W|$ (forward + backward), and the whole layer."""
    rows = []
    for c in channels:
        torch.manual_seed(seed)
        layers = {"slogdet": InvertibleConv1x1(c, lu=False).to(device), "lu": InvertibleConv1x1(c, lu=True).to(device)}
        grad_w = torch.randn(c, c, device=device)
        y = torch.randn(4, c, 8, 8, device=device)

        t_param = interleaved_times({k: _param_step(v, grad_w) for k, v in layers.items()}, device, reps, warmup)
        t_layer = interleaved_times({k: _layer_step(v, y) for k, v in layers.items()}, device, reps, warmup)
        rows.append(
            {
                "channels": c,
                "slogdet_param_s": statistics.median(t_param["slogdet"]),
                "lu_param_s": statistics.median(t_param["lu"]),
                "param_ratio": median_ratio(t_param["slogdet"], t_param["lu"]),
                "slogdet_layer_s": statistics.median(t_layer["slogdet"]),
                "lu_layer_s": statistics.median(t_layer["lu"]),
                "layer_ratio": median_ratio(t_layer["slogdet"], t_layer["lu"]),
                "reps": reps,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per configuration")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=None, help="coupling width (default 512; smoke 16)")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default 2)")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.memory_worker is not None:
        print(memory_worker(FlowSize(**json.loads(args.memory_worker)), device, args.seed))
        return {}

    if args.smoke:
        base = FlowSize(hr=16, steps=2, hidden=16, cond_channels=8, batch=2)
        sizes, depths, channels = [8, 16], [1, 2], [8, 16]
        reps = min(args.reps, 3)
    else:
        base = FlowSize()
        sizes, depths, channels = [32, 64, 128], [2, 4, 8, 16], [8, 16, 32, 64, 128, 256, 512]
        reps = args.reps
    base = replace(base, hidden=args.hidden or base.hidden, batch=args.batch or base.batch)

    cache: dict[str, int] = {}
    common = (device, reps, args.warmup, args.seed, args.threads, cache)
    flow_rows = sweep_flow([replace(base, hr=s) for s in sizes], "hr", *common)
    flow_rows += sweep_flow([replace(base, steps=k) for k in depths], "steps", *common)
    conv_rows = sweep_conv1x1(channels, device, max(reps, 10), args.warmup + 2, args.seed)
    result = {"config": asdict(base), "machine": machine_info(device), "flow": flow_rows, "conv1x1": conv_rows}

    cols = ["sweep", "hr", "steps", "parameters", "step_s", "step_min_s", "peak_mib"]
    print_table(flow_rows, cols, f"SR flow training step on {device} (batch {base.batch}, hidden {base.hidden})")
    conv_cols = ["channels", "slogdet_param_s", "lu_param_s", "param_ratio", "slogdet_layer_s", "lu_layer_s"]
    print_table(conv_rows, conv_cols + ["layer_ratio"], "1x1 convolution: slogdet / LU (forward + backward)")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
