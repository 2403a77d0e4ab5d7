"""Does ``torch.compile`` pay for the engine's training step? Compile time, step time, and when it breaks even.

For each model, two :class:`cnf_teach.engine.Trainer` s with the same initial weights train on
the same batch, one eager and one with ``TrainConfig(compile=True)`` (the loss, forward and
backward, through ``torch.compile``'s default Inductor backend; Adam and the gradient clipping
stay eager in both). Measured:

- ``compile_s``: the compiled trainer's first step minus its steady step: tracing, the
  graphs' code generation and the C++ (CPU) or Triton (GPU) compilation, with an empty compiler
  cache (a fresh ``TORCHINDUCTOR_CACHE_DIR``), i.e. what a learner's first run pays;
- ``compile_warm_s``: the same after ``torch._dynamo.reset()``, with the cache that the first
  compilation filled: what a second run of the same model on the same machine pays;
- ``eager_s`` / ``compiled_s``: steady step times, medians of ``--reps`` interleaved
  repetitions (``common.py``), and ``speedup`` = eager / compiled, the median of the
  per-repetition ratios.

That the compiled step computes the eager losses is a test, not a benchmark:
``tests/test_compile.py`` (Inductor draws its random numbers with its own generator, so the two
trainers here see different dequantization noise).

Wall-clock totals are **extrapolated**, not run: ``short`` is a notebook's loop of ``--short``
steps (200), ``long`` the config's own training length (SR: ``SRConfig.train_steps``; vessels:
the shipped models' 8000 steps), each ``steps x step + compile`` against ``steps x eager step``;
``break_even_steps`` = ``compile_s / (eager_s - compiled_s)``.

Models as in ``flow_share.py``: ``sr-tiny``, ``sr-small``, ``seg-tiny``, ``seg-small``.
``--backend aot_eager`` traces the same graphs without generating code (what the smoke test
runs, in seconds); its times say nothing about Inductor's.

Usage::

    python benchmarks/compile_step.py [--smoke] [--json OUT] [--threads 1] [--models sr-tiny,seg-tiny]

References:
    Ansel et al. PyTorch 2: Faster Machine Learning Through Dynamic Python Bytecode
    Transformation and Graph Compilation. ASPLOS 2024.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import tempfile
import time
from typing import Any

import torch
from common import (
    add_common_args,
    chosen_models,
    interleaved_times,
    machine_info,
    print_table,
    resolve_device,
    write_json,
)
from flow_share import MODELS
from torch import nn

log = logging.getLogger("benchmarks.compile_step")

#: Training steps of a long run when the config does not say (the shipped vessel models' 8000).
SEG_LONG_STEPS = 8000


def build(name: str, smoke: bool, seg_size: int) -> tuple[nn.Module, Any, Any, dict[str, Any], int]:
    """``(model, loss_fn, batch, TrainConfig settings, long-run steps)`` for one of ``MODELS``."""
    from dataclasses import replace

    family, size = name.split("-")
    if family == "sr":
        from cnf_teach.super_resolution import SRConfig, SuperResolutionCNF
        from cnf_teach.super_resolution.model import sr_loss

        cfg = SRConfig.preset(size)
        if smoke:
            cfg = replace(cfg, steps=1, hidden=8, prior_hidden=4, patch=8, batch_size=2)
        hr = torch.randint(0, 256, (cfg.batch_size, 3, cfg.patch, cfg.patch), dtype=torch.uint8)
        lr = nn.functional.avg_pool2d(hr.float(), cfg.scale).round().to(torch.uint8)
        settings = {"lr": cfg.lr, "grad_clip": cfg.grad_clip, "batch_size": cfg.batch_size}
        return SuperResolutionCNF(cfg), sr_loss, (lr, hr), settings, cfg.train_steps
    from cnf_teach.vessels import SegConfig, SegFlow
    from cnf_teach.vessels.model import seg_loss

    cfg = getattr(SegConfig, size)()
    pixels, batch = (8, 2) if smoke else (seg_size, cfg.batch_size)
    x = torch.rand(batch, 3, pixels, pixels)
    y = (x[:, 1:2] + 0.1 * torch.randn(batch, 1, pixels, pixels) > 0.6).float()
    settings = {"lr": cfg.lr, "batch_size": batch}
    return SegFlow(cfg, "binary"), seg_loss, {"x": x, "y": y}, settings, SEG_LONG_STEPS


def _first_step(trainer: Any, batch: Any, seed: int) -> float:
    """Seconds of a trainer's first step (the compiled trainer's includes the compilation)."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    trainer.train_step(batch)
    return time.perf_counter() - start


def measure(name: str, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """Compile time, steady step times and the extrapolated totals of one model."""
    from cnf_teach.engine import TrainConfig, Trainer

    torch.manual_seed(args.seed)
    model, loss_fn, batch, settings, long_steps = build(name, args.smoke, args.seg_size)
    initial = copy.deepcopy(model.state_dict())

    def trainer(compiled: bool) -> Trainer:
        fresh, _, _, _, _ = build(name, args.smoke, args.seg_size)
        fresh.load_state_dict(initial)
        config = TrainConfig(
            steps=10**6,
            device=str(device),
            progress=False,
            compile=compiled,
            compile_backend=args.backend,
            **settings,
        )
        return Trainer(fresh, loss_fn, [], config)

    eager, compiled = trainer(False), trainer(True)
    if not compiled.use_compile:
        raise SystemExit(f"torch.compile cannot train on {device} here (see the warning above)")
    first_eager = _first_step(eager, batch, args.seed)
    first_compiled = _first_step(compiled, batch, args.seed)
    log.info("%s: first step eager %.2f s, compiled %.1f s", name, first_eager, first_compiled)
    times = interleaved_times(
        {"eager": lambda: eager.train_step(batch), "compiled": lambda: compiled.train_step(batch)},
        device,
        args.reps,
        warmup=1,
    )
    eager_s, compiled_s = statistics.median(times["eager"]), statistics.median(times["compiled"])
    compile_s = max(first_compiled - compiled_s, 0.0)

    torch._dynamo.reset()  # compile again: Dynamo's caches are gone, Inductor's on-disk cache is warm
    again = trainer(True)
    first_again = _first_step(again, batch, args.seed)
    compile_warm_s = max(first_again - compiled_s, 0.0)
    torch._dynamo.reset()

    def totals(steps: int) -> dict[str, float]:
        eager_total, compiled_total = steps * eager_s, compile_s + steps * compiled_s
        return {"steps": steps, "eager_s": eager_total, "compiled_s": compiled_total, "x": eager_total / compiled_total}

    gain = eager_s - compiled_s
    return {
        "model": name,
        "compile_s": compile_s,
        "compile_warm_s": compile_warm_s,
        "eager_s": eager_s,
        "compiled_s": compiled_s,
        "speedup": statistics.median(e / c for e, c in zip(times["eager"], times["compiled"], strict=True)),
        "break_even_steps": compile_s / gain if gain > 0 else float("inf"),
        "short": totals(args.short),
        "long": totals(long_steps),
        "reps": args.reps,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
    parser.add_argument("--seg-size", type=int, default=96, help="side of the vessel crops (default 96)")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--short", type=int, default=200, help="steps of a notebook's loop (default 200)")
    parser.add_argument("--keep-cache", action="store_true", help="use the existing compiler cache (a warm start)")
    parser.add_argument(
        "--backend", default="inductor", help="torch.compile backend (default inductor; aot_eager: no code generation)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    names = chosen_models(args.models, MODELS)

    with tempfile.TemporaryDirectory(prefix="cnf_teach_inductor_") as cache:
        if not args.keep_cache:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # a cold start: nothing compiled before
        rows = [measure(name, device, args) for name in names]

    print(f"\ntorch.compile of the training step on {device}, {args.reps} interleaved repetitions")
    print_table(
        rows,
        ["model", "compile_s", "compile_warm_s", "eager_s", "compiled_s", "speedup", "break_even_steps"],
        "Compile time and steady step (median)",
    )
    flat = [
        {
            "model": r["model"],
            "run": run,
            "steps": r[run]["steps"],
            "eager_s": r[run]["eager_s"],
            "compiled_s": r[run]["compiled_s"],
            "x": r[run]["x"],
        }
        for r in rows
        for run in ("short", "long")
    ]
    title = "Extrapolated totals (x = eager / compiled)"
    print_table(flat, ["model", "run", "steps", "eager_s", "compiled_s", "x"], title)
    result = {"machine": machine_info(device), "smoke": args.smoke, "rows": rows}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
