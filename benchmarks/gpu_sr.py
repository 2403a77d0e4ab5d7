"""How fast does the paper's SR CNF train on one GPU? Step time, images/s, memory, and 200k iterations.

Builds ``SRConfig.paper_imagenet64()`` (L=2, K=8, 512-channel couplings, RRDB 16 blocks, about 40M
parameters; Tables 5, 6, 8 of Winkler et al. 2019) and runs training steps through the package's
engine (:class:`cnf_teach.engine.Trainer`, Adam, gradient clipping, NaN check) at batch 64 on
random 32x32 -> 64x64 image pairs, in each precision mode:

- ``fp32``: full float32 (TF32 off);
- ``tf32``: float32 with TensorFloat-32 matrix multiplies and convolutions;
- ``bf16``: bf16 autocast (the engine's ``amp=True``), TF32 on;

each eager and under ``torch.compile`` (dynamo is reset before every mode, so each mode compiles
its own graphs and none inherits another's recompile count). Each mode is timed twice:

- ``model_step_s``: the training step alone, on one batch already on the device;
- ``step_s``: the real pipeline, :meth:`Trainer.fit` drawing batches from :func:`make_loader` over
  a downsampled-ImageNet file of random images (``--data DIR`` for a real copy) with the LR
  images cached (``cache_lr``), workers, pinned memory and prefetch as on a training run.

It prints steps/s and images/s of the real pipeline, the model-only step, peak memory and the
time the paper's 200k iterations would take, and stops starting new modes once the budget
(default 8 minutes, compilation included) is spent.

Usage:
    python benchmarks/gpu_sr.py [--json OUT] [--budget-minutes 8] [--steps 20] [--data DIR]
    python benchmarks/gpu_sr.py --smoke     # tiny sizes on the CPU: checks the script in seconds
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import torch

from cnf_teach.data.imagenet import DownsampledImageNet, save_imagenet_batch
from cnf_teach.engine import TrainConfig, Trainer, make_loader
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


def random_imagenet(folder: Path, images: int, side: int, channels: int) -> Path:
    """Write ``images`` random ``side`` px images as a downsampled-ImageNet ``val_data.npz`` in ``folder``."""
    g = torch.Generator().manual_seed(0)
    save_imagenet_batch(
        folder / "val_data.npz", torch.randint(0, 256, (images, channels, side, side), generator=g, dtype=torch.uint8)
    )
    return folder


def run_mode(
    name: str,
    amp: bool,
    compile_: bool,
    config: SRConfig,
    device: str,
    batch: int,
    steps: int,
    warmup: int,
    data: DownsampledImageNet | None = None,
    workers: int | None = None,
) -> dict:
    """Time ``steps`` training steps after ``warmup`` untimed ones (compilation happens there).

    With ``data``, also time ``steps`` steps of :meth:`Trainer.fit` fed by the real loader.
    """
    torch._dynamo.reset()  # a fresh compiler state: no graphs or recompile counts from the previous mode
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
        out = trainer.train_step((lr, hr))  # the public step reads its metrics (one sync per step)
    if cuda:
        torch.cuda.synchronize()
    model_step_s = (time.perf_counter() - start) / steps
    step_s, last_bpd = model_step_s, out["bpd"]
    if data is not None:  # the real pipeline: fit() (no per-step sync) fed by the loader
        loader = make_loader(data, batch, seed=0, num_workers=workers, device=device)
        trainer.train_data = loader
        trainer._iterator = None
        trainer.config = dataclasses.replace(cfg, steps=trainer.step + warmup + steps, log_every=steps)
        trainer.fit(until=trainer.step + warmup)  # starts the workers, fills the prefetch queue
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fitted = trainer.fit()
        if cuda:
            torch.cuda.synchronize()
        step_s, last_bpd = (time.perf_counter() - start) / steps, fitted["bpd"]
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return {
        "mode": name,
        "step_s": step_s,
        "steps_per_s": 1 / step_s,
        "images_per_s": batch / step_s,
        "model_step_s": model_step_s,
        "peak_gib": peak,
        "warmup_s": warm_s,
        "hours_200k": step_s * PAPER_ITERATIONS / 3600,
        "last_bpd": last_bpd,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (seconds)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per mode (compilation, cuDNN tuning)")
    p.add_argument("--budget-minutes", type=float, default=8.0, help="start no new mode after this")
    p.add_argument("--modes", default=",".join(m[0] for m in MODES), help="comma-separated subset of the modes")
    p.add_argument("--data", metavar="DIR", help="downsampled ImageNet copy for the loader (default: random images)")
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: the engine's choice)")
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
    tmp = tempfile.TemporaryDirectory()
    folder = (
        Path(args.data)
        if args.data
        else random_imagenet(Path(tmp.name), batch * (steps + warmup + 2), config.patch, config.channels)
    )
    split = "train" if args.data else "val"
    data = DownsampledImageNet(folder, split, scale=config.scale, cache_lr=True)
    rows, skipped = [], []
    for name, amp, compile_ in wanted:
        left = budget - (time.perf_counter() - start)
        if left <= 0 or (compile_ and left < 150):  # compiling the 40M-parameter model takes minutes
            skipped.append(name)
            continue
        try:
            rows.append(run_mode(name, amp, compile_, config, device, batch, steps, warmup, data, args.workers))
        except RuntimeError as err:  # out of memory, a compiler failure: report it and go on
            rows.append({"mode": name, "error": str(err).splitlines()[0]})
        if device == "cuda":
            torch.cuda.empty_cache()
    tmp.cleanup()
    head = f"{'mode':<14} {'step (s)':>9} {'steps/s':>8} {'images/s':>9} {'model (s)':>9} {'peak GiB':>9} "
    head += f"{'warm-up s':>9} {'200k iters (h)':>15} {'bpd':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:<14} failed: {r['error']}")
            continue
        peak = "-" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.1f}"
        print(
            f"{r['mode']:<14} {r['step_s']:>9.3f} {r['steps_per_s']:>8.2f} {r['images_per_s']:>9.1f} "
            f"{r['model_step_s']:>9.3f} {peak:>9} {r['warmup_s']:>9.1f} {r['hours_200k']:>15.1f} {r['last_bpd']:>7.3f}"
        )
    if skipped:
        print(f"skipped (budget of {args.budget_minutes:g} min spent): {', '.join(skipped)}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": config.name, "batch": batch, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
