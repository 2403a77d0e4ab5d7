"""What the flow costs: the SR CNF's training step against the parameter-matched factorized baseline's.

Both models of §5.1 of Winkler et al. 2019 share the RRDB conditioning network: the CNF
(:class:`cnf_teach.super_resolution.SuperResolutionCNF`, RRDB growth 32 plus the multi-scale
flow) and the factorized discretized-logistic baseline
(:class:`cnf_teach.super_resolution.SuperResolutionBaseline`, RRDB growth 55 so that the two
have about as many parameters). The ratio CNF / baseline is the price of an exact,
multi-modal likelihood over a per-pixel one at the same parameter budget.

Measures, each the median of ``--reps`` interleaved repetitions after warm-up (ratio =
median of per-repetition ratios, see ``common.py``):

- ``train_step``: forward ($-\\log P(y \\mid x)$ in bits/dim, averaged over the batch) +
  backward, on 8-bit HR images ``y`` and their 2x2-averaged LR images ``x``;
- ``predict``: the model's SR output for a batch (CNF: a sample at $\\tau = 0.8$;
  baseline: the per-pixel mode).

The SR configuration is a preset of :class:`cnf_teach.super_resolution.SRConfig` (``--config``,
default ``tiny``; the paper's are ``paper-imagenet32`` and ``paper-imagenet64``).

Usage::

    python benchmarks/flow_overhead.py [--smoke] [--json OUT] [--device auto|cpu|cuda] [--config tiny]

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, eq. (6).
"""

from __future__ import annotations

import argparse
import logging
import statistics
from dataclasses import replace

import torch
import torch.nn.functional as F
from common import (
    add_common_args,
    interleaved_times,
    machine_info,
    median_ratio,
    print_table,
    ratio_quartiles,
    resolve_device,
    write_json,
)
from torch import Tensor, nn

log = logging.getLogger("benchmarks.flow_overhead")


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def make_pair(batch: int, patch: int, scale: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Random 8-bit HR images ``y [B, 3, patch, patch]`` and their box-downscaled LR ``x``."""
    y = torch.randint(0, 256, (batch, 3, patch, patch), device=device, dtype=torch.uint8)
    x = F.avg_pool2d(y.float(), scale).round().to(torch.uint8)  # [B, 3, patch / s, patch / s]
    return y, x


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--config", default="tiny", help="SRConfig preset: tiny, paper-imagenet32, paper-imagenet64")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the preset's)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    from cnf_teach.super_resolution import SRConfig, build_sr_model

    try:
        cfg = SRConfig.preset(args.config)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    if args.smoke:  # the tiny structure at a few milliseconds per step
        cfg = replace(cfg, steps=2, patch=16, batch_size=2)
    batch = args.batch or cfg.batch_size

    torch.manual_seed(args.seed)
    models = {"cnf": build_sr_model(cfg, "cnf"), "baseline": build_sr_model(cfg, "baseline")}
    for m in models.values():
        m.to(device).train()
    params = {k: trainable_parameters(m) for k, m in models.items()}
    y, x = make_pair(batch, cfg.patch, cfg.scale, device)

    def train_step(model: nn.Module):
        def step() -> None:
            model.zero_grad(set_to_none=True)
            model.bits_per_dim(y, x).mean().backward()

        return step

    def predict(model: nn.Module, temperature: float):
        def run() -> Tensor:
            with torch.no_grad():
                return model.predict(x, temperature)

        return run

    times = {
        "train_step": interleaved_times({k: train_step(m) for k, m in models.items()}, device, args.reps, args.warmup),
        "predict": interleaved_times(
            {"cnf": predict(models["cnf"], 0.8), "baseline": predict(models["baseline"], 0.0)},
            device,
            args.reps,
            args.warmup,
        ),
    }
    rows = [
        {
            "measure": measure,
            "ratio": median_ratio(t["cnf"], t["baseline"]),
            "ratio_q1_q3": ratio_quartiles(t["cnf"], t["baseline"]),
            "cnf_s": statistics.median(t["cnf"]),
            "baseline_s": statistics.median(t["baseline"]),
            "reps": args.reps,
        }
        for measure, t in times.items()
    ]
    result = {
        "config": cfg.to_dict(),
        "batch": batch,
        "params": params,
        "machine": machine_info(device),
        "rows": rows,
    }
    print(f"\nSR config {cfg.name!r} (patch {cfg.patch}, batch {batch}) on {device}, {args.reps} repetitions")
    print_table([{"model": k, "trainable parameters": v} for k, v in params.items()], ["model", "trainable parameters"])
    print_table(rows, ["measure", "ratio", "ratio_q1_q3", "cnf_s", "baseline_s"], "CNF / factorized baseline (median)")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
