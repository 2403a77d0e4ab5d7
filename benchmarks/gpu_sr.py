"""How fast does the paper's SR CNF train on one GPU? Step time, images/s, memory, and 200k iterations.

Builds ``SRConfig.paper_imagenet64()`` (L=2, K=8, 512-channel couplings, RRDB 16 blocks, about 40M
parameters; Tables 5, 6, 8 of Winkler et al. 2019) and runs training steps through the package's
engine (:class:`cnf_teach.engine.Trainer`, Adam, gradient clipping, NaN check) at batch 64 on
random 32x32 -> 64x64 image pairs, in each precision mode:

- ``fp32``: full float32 (TF32 off);
- ``tf32``: float32 with TensorFloat-32 matrix multiplies and convolutions;
- ``bf16``: bf16 autocast (the engine's ``amp=True``), TF32 on;

each eager and under ``torch.compile``. It prints the mean step time, images/s, peak memory
and the time the paper's 200k iterations would take, and stops starting new modes once the
budget (default 8 minutes, compilation included) is spent.

Usage:
    python benchmarks/gpu_sr.py [--json OUT] [--budget-minutes 8] [--steps 20]
    python benchmarks/gpu_sr.py --smoke     # tiny sizes on the CPU: checks the script in seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import time
from pathlib import Path

import torch

from cnf_teach.engine import TrainConfig, Trainer
from cnf_teach.super_resolution import SRConfig, build_sr_model, count_parameters, sr_loss

PAPER_ITERATIONS = 200_000
MODES = (
    ("fp32", False, False),
    ("tf32", False, False),
    ("bf16", True, False),
    ("fp32+compile", False, True),
    ("tf32+compile", False, True),
    ("bf16+compile", True, True),
)


def _set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def run_mode(
    name: str, amp: bool, compile_: bool, config: SRConfig, device: str, batch: int, steps: int, warmup: int
) -> dict:
    """Time ``steps`` training steps after ``warmup`` untimed ones (compilation happens there)."""
    _set_tf32(not name.startswith("fp32"))
    torch.manual_seed(0)
    model = build_sr_model(config, "cnf")
    side = config.patch
    hr = torch.randint(0, 256, (batch, config.channels, side, side), dtype=torch.uint8)
    lr = torch.randint(0, 256, (batch, config.channels, side // config.scale, side // config.scale), dtype=torch.uint8)
    cfg = TrainConfig(
        steps=warmup + steps,
        lr=config.lr,
        batch_size=batch,
        grad_clip=config.grad_clip,
        device=device,
        amp=amp,
        compile=compile_,
        progress=False,
    )
    trainer = Trainer(model, sr_loss, [(lr, hr)], cfg, task="sr")
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(warmup):
        out = trainer.train_step((lr, hr))
    if cuda:
        torch.cuda.synchronize()
    warm_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        out = trainer.train_step((lr, hr))  # .tolist() inside syncs every step (the NaN check)
    if cuda:
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {
        "mode": name,
        "step_s": step_s,
        "images_per_s": batch / step_s,
        "peak_gib": peak,
        "warmup_s": warm_s,
        "hours_200k": step_s * PAPER_ITERATIONS / 3600,
        "last_bpd": out["bpd"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (seconds)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per mode (compilation, cuDNN tuning)")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="start no new mode after this")
    p.add_argument("--modes", default=",".join(m[0] for m in MODES), help="comma-separated subset of the modes")
    p.add_argument("--json", metavar="OUT")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    wanted = [m for m in MODES if m[0] in args.modes.split(",")]
    if args.smoke:
        config = dataclasses.replace(SRConfig.tiny(), rrdb_blocks=1, steps=1, hidden=8, patch=16)
        device, batch, steps, warmup = "cpu", 2, 2, 1
        wanted = [m for m in wanted if not m[2]]  # compilation is the GPU's business
    else:
        if not torch.cuda.is_available():
            raise SystemExit("error: no CUDA device; run with --smoke to check the script on the CPU")
        config, device, batch, steps, warmup = (
            SRConfig.paper_imagenet64(),
            "cuda",
            args.batch_size,
            args.steps,
            args.warmup,
        )
        torch.backends.cudnn.benchmark = True
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"model: {config.name}, {count_parameters(config, 'cnf'):,} parameters, batch {batch}, HR {config.patch}px")
    budget = args.budget_minutes * 60
    start = time.perf_counter()
    rows, skipped = [], []
    for name, amp, compile_ in wanted:
        left = budget - (time.perf_counter() - start)
        if left <= 0 or (compile_ and left < 150):  # compiling the 40M-parameter model takes minutes
            skipped.append(name)
            continue
        try:
            rows.append(run_mode(name, amp, compile_, config, device, batch, steps, warmup))
        except RuntimeError as err:  # out of memory, a compiler failure: report it and go on
            rows.append({"mode": name, "error": str(err).splitlines()[0]})
        if device == "cuda":
            torch.cuda.empty_cache()
    head = f"{'mode':<14} {'step (s)':>9} {'images/s':>9} {'peak GiB':>9} {'warm-up s':>9} "
    head += f"{'200k iters (h)':>15} {'bpd':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:<14} failed: {r['error']}")
            continue
        peak = "-" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.1f}"
        print(
            f"{r['mode']:<14} {r['step_s']:>9.3f} {r['images_per_s']:>9.1f} {peak:>9} {r['warmup_s']:>9.1f} "
            f"{r['hours_200k']:>15.1f} {r['last_bpd']:>7.3f}"
        )
    if skipped:
        print(f"skipped (budget of {args.budget_minutes:g} min spent): {', '.join(skipped)}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": config.name, "batch": batch, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
