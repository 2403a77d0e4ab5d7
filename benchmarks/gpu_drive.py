"""What the paper's DRIVE run costs on a GPU: step time, peak memory, and the time for 2000 epochs.

Builds ``SegConfig.paper_drive()`` (the binary-dequantized CNF: L=2, K=2, instance
norm, additive couplings with Table 7's net, VGG features of Table 4) and trains it
on the shared engine at the paper's scale: DRIVE-sized photographs (584x565, here
synthetic retinas) padded to 1024x1024, batch 2, Adam at $10^{-3}$. It reports

- the median time of a training step (forward, backward, Adam) after warm-up on one batch already
  on the device (``model_step_s``),
- the time of a step of the real pipeline (``step_s``): :meth:`Trainer.fit` fed by the training
  command's loader (on CUDA the padded images stay on the GPU and are augmented there,
  :class:`cnf_teach.data.drive_loader.DeviceDriveLoader`; elsewhere a ``DataLoader``), with the paper's
  rotation, scale and shear augmentation; steps/s and images/s follow from it,
- the peak GPU memory of a step,
- the estimated time of the paper's schedule, 2000 epochs of 20 images
  ($2000 \\cdot 20 / 2 = 20\\,000$ steps of the real pipeline),
- the time of one sample of one 1024x1024 image and the estimated time of the paper's
  evaluation (100 samples for each of 20 test images).

The whole run is bounded by ``--max-minutes`` (default 8). ``--smoke`` runs the same
code on the CPU at 32x32 with the tiny config in seconds (what CI runs).

Usage::

    python benchmarks/gpu_drive.py [--smoke] [--json OUT] [--device cuda] [--amp] [--max-minutes 8]

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2.
    Staal et al. Ridge-based vessel segmentation in color images of the retina. IEEE TMI 2004 (DRIVE).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import add_common_args, machine_info, print_table, resolve_device, synchronize, write_json

from cnf_teach.data.augment import JointAugment
from cnf_teach.data.drive import DeviceDriveLoader, DriveDataset, DriveImage, pad_image, write_drive_split
from cnf_teach.data.synthetic_retina import RetinaConfig, synthetic_retina
from cnf_teach.engine import TrainConfig, Trainer, make_loader
from cnf_teach.vessels import SegConfig, SegFlow, seg_loss

log = logging.getLogger("gpu_drive")

EPOCHS, TRAIN_IMAGES, TEST_IMAGES = 2000, 20, 20


def _batch(config: SegConfig, height: int, width: int, pad: int, seed: int) -> dict[str, torch.Tensor]:
    """A batch of synthetic retinas of ``height x width`` padded to ``pad x pad``."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(config.batch_size):
        im = synthetic_retina(RetinaConfig(height=height, width=width), rng)
        xs.append(pad_image(torch.from_numpy(im.image).permute(2, 0, 1).float() / 255.0, (pad, pad))[0])
        ys.append(pad_image(torch.from_numpy(im.label)[None].float(), (pad, pad))[0])
    return {"x": torch.stack(xs), "y": torch.stack(ys)}


def _loader(config: SegConfig, height: int, width: int, pad: int, seed: int, device: torch.device, folder: Path):
    """The training command's loader over a few synthetic retinas written as a DRIVE split in ``folder``."""
    rng = np.random.default_rng(seed + 1)
    images = []
    for i in range(2 * config.batch_size):  # the per-batch cost does not depend on the split's size
        im = synthetic_retina(RetinaConfig(height=height, width=width), rng)
        images.append(DriveImage(f"{21 + i}", im.image, im.label, im.mask))
    write_drive_split(folder, "training", images)
    dataset = DriveDataset(folder, "training", pad_to=pad, augment=JointAugment())
    if device.type == "cuda":
        return DeviceDriveLoader(dataset, config.batch_size, device, seed=seed)
    return make_loader(dataset, config.batch_size, seed=seed, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA only)")
    parser.add_argument("--max-minutes", type=float, default=8.0, help="upper bound on the whole run")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (at most)")
    parser.add_argument(
        "--pad-to", type=int, default=None, help="canvas size (default: the paper's 1024; photographs scale with it)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type != "cuda" and not args.smoke:
        log.warning("no CUDA device: the full run on %s will be slow; use --smoke for a CPU check", device)
    deadline = time.perf_counter() + 60.0 * args.max_minutes
    if args.smoke:
        config = SegConfig.tiny()
        config.batch_size = 2
        height, width, pad, timed = 29, 27, 32, min(args.steps, 3)
    else:
        config = SegConfig.paper_drive()
        pad = args.pad_to or config.pad_to
        if pad % 4:
            raise SystemExit(f"--pad-to must be divisible by 4, got {pad}")
        # DRIVE's 584x565 inside 1024x1024; a smaller canvas gets proportionally smaller photographs.
        height, width, timed = round(584 * pad / 1024), round(565 * pad / 1024), args.steps
    torch.manual_seed(args.seed)
    batch = _batch(config, height, width, pad, args.seed)
    model = SegFlow(config, "binary")
    params = sum(p.numel() for p in model.parameters())
    train_cfg = TrainConfig(steps=10**6, lr=config.lr, batch_size=config.batch_size, device=str(device), amp=args.amp)
    trainer = Trainer(model, seg_loss, [batch], train_cfg, task="seg")

    for _ in range(2):  # warm-up: actnorm-style initialisation, allocator, cuDNN plans
        trainer.train_step(batch)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(timed):
        synchronize(device)
        start = time.perf_counter()
        metrics = trainer.train_step(batch)
        synchronize(device)
        times.append(time.perf_counter() - start)
        if time.perf_counter() > deadline - 60:
            log.warning("stopping the timed steps early to stay within --max-minutes")
            break
    model_step_s = statistics.median(times)
    # The real pipeline: fit() (no per-step host sync) fed by the loader, augmentation included.
    with tempfile.TemporaryDirectory() as tmp:
        trainer.train_data = _loader(config, height, width, pad, args.seed, device, Path(tmp))
        trainer._iterator = None
        trainer.config = dataclasses.replace(
            train_cfg, steps=trainer.step + 2 + len(times), log_every=len(times), progress=False
        )
        trainer.fit(until=trainer.step + 2)  # warm-up of the loader
        synchronize(device)
        start = time.perf_counter()
        fitted = trainer.fit()
        synchronize(device)
        step_s = (time.perf_counter() - start) / len(times)
    metrics = {"bpd": fitted["bpd"]}
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None

    model.eval()
    sample_times = []
    with torch.no_grad():
        x1 = batch["x"][:1].to(device)
        for _ in range(3):
            synchronize(device)
            start = time.perf_counter()
            model.sample(x1)
            synchronize(device)
            sample_times.append(time.perf_counter() - start)
            if time.perf_counter() > deadline - 30:
                break
    sample_s = statistics.median(sample_times[1:] or sample_times)

    steps_total = EPOCHS * TRAIN_IMAGES // config.batch_size
    row = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "image": f"{pad}x{pad}",
        "batch": config.batch_size,
        "params": params,
        "step_s": step_s,
        "steps_per_s": 1 / step_s,
        "images_per_s": config.batch_size / step_s,
        "model_step_s": model_step_s,
        "peak_mem_gib": peak / 2**30 if peak is not None else float("nan"),
        "steps_2000_epochs": steps_total,
        "train_hours": steps_total * step_s / 3600,
        "sample_s": sample_s,
        "eval_minutes": TEST_IMAGES * 100 * sample_s / 60,
        "train_bpd_last": metrics["bpd"],
    }
    columns = [
        "device",
        "image",
        "batch",
        "params",
        "step_s",
        "steps_per_s",
        "images_per_s",
        "model_step_s",
        "peak_mem_gib",
        "train_hours",
        "sample_s",
        "eval_minutes",
    ]
    print_table([row], columns, "Paper DRIVE configuration: cost of one step and of the whole schedule")
    write_json(
        args.json,
        {
            "row": row,
            "step_times_s": times,
            "amp": args.amp,
            "config": config.to_dict(),
            "machine": machine_info(device),
        },
    )


if __name__ == "__main__":
    main()
