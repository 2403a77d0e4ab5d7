"""``cnf-teach seg train``: a vessel model on the shared engine (§5.2 of Winkler et al. 2019).

Progress bar, checkpoints, ``--resume``, DDP under ``torchrun``; without ``--data`` it trains on
synthetic retinas written to ``OUT/synthetic_drive``; ``--downscale 2`` shrinks real DRIVE
photographs to 292x282 and ``--crop SIZE`` trains on random square windows: the CPU path on
real DRIVE (an addition; see "Readings and deviations").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

import torch

from .common import pick_device, usage_error
from .seg_inputs import checked_downscale, read_dataset, stored_downscale

__all__ = ["run_train"]

log = logging.getLogger(__name__)


def run_train(args: argparse.Namespace) -> int:
    from ..data.augment import JointAugment
    from ..data.synthetic_retina import make_synthetic_drive
    from ..engine import CHECKPOINT_NAME, TrainConfig, Trainer, load_checkpoint, make_loader
    from ..vessels.checkpoint import model_from_checkpoint, seg_checkpoint_state, seg_model_spec
    from ..vessels.config import SegConfig
    from ..vessels.model import build_seg_model, seg_loss

    out = Path(args.out)
    for name in ("steps", "batch_size", "pad_to"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise usage_error(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.lr is not None and args.lr <= 0:
        raise usage_error(f"--lr must be positive, got {args.lr}")
    if args.crop is not None and (args.crop < 4 or args.crop % 4):
        raise usage_error(f"--crop must be a positive multiple of 4 (2**levels of the flow), got {args.crop}")
    downscale = checked_downscale(args.downscale, 1.0) if args.downscale is not None else None
    config = SegConfig.paper_drive() if args.config == "paper" else SegConfig.tiny()
    if args.lr is not None:
        config.lr = args.lr
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    if args.pad_to is not None:
        config.pad_to = args.pad_to
    ckpt_path = out / CHECKPOINT_NAME
    if args.resume:
        try:
            previous = load_checkpoint(ckpt_path)
            kind, stored = seg_model_spec(previous, str(ckpt_path))
            resumed = model_from_checkpoint(previous, str(ckpt_path))  # the stored config builds the model
        except (FileNotFoundError, ValueError) as err:
            raise usage_error(f"cannot resume: {err}") from None
        config = SegConfig.from_dict(stored)
        if kind != args.model:
            raise usage_error(f"{ckpt_path} holds a {kind!r} model; pass --model {kind}")
        if downscale is None:
            downscale = stored_downscale(previous.get("extra"))
    elif ckpt_path.exists():
        raise usage_error(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    downscale = 1.0 if downscale is None else downscale
    data = args.data
    if data is None:
        data = str(out / "synthetic_drive")
        if not Path(data, "training").is_dir():
            log.info("no --data: writing synthetic retinas to %s", data)
            make_synthetic_drive(data, seed=args.seed)
    torch.manual_seed(args.seed)
    augment = None if args.no_augment else JointAugment()
    dataset = read_dataset(data, "training", pad_to=config.pad_to, augment=augment, downscale=downscale, crop=args.crop)
    h, w = dataset.images[0].image.shape[:2]
    window = f"random {args.crop}x{args.crop} windows of " if args.crop else ""
    log.info("training on %s%dx%d images (downscale %g), padded to %dx%d", window, h, w, downscale, *dataset.size)
    if len(dataset) < config.batch_size:
        raise usage_error(f"{data} has {len(dataset)} training images, fewer than one batch of {config.batch_size}")
    device = pick_device(args.device)
    if args.workers is not None and args.workers < 0:
        raise usage_error(f"--workers must be >= 0, got {args.workers}")
    if device.type == "cuda" and args.workers is None:
        from ..data.drive import DeviceDriveLoader

        rank_device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))  # this process's GPU under DDP
        loader = DeviceDriveLoader(dataset, config.batch_size, rank_device, seed=args.seed)
    else:
        loader = make_loader(dataset, config.batch_size, seed=args.seed, num_workers=args.workers, device=device)
    steps = args.steps if args.steps is not None else config.epochs * len(loader)
    train_cfg = TrainConfig(
        steps=steps,
        lr=config.lr,
        batch_size=config.batch_size,
        checkpoint_every=args.checkpoint_every,
        out_dir=str(out),
        device=str(device),
        seed=args.seed,
        progress=not args.no_progress,
    )
    model = resumed if args.resume else build_seg_model(args.model, config)
    extra = {**seg_checkpoint_state(config, args.model, str(data)), "downscale": downscale, "crop": args.crop}
    if args.resume:
        try:
            trainer = Trainer.resume(ckpt_path, model, seg_loss, loader, train_cfg, task="seg", extra_state=extra)
        except ValueError as err:
            raise usage_error(f"cannot resume: {err}") from None
    else:
        trainer = Trainer(model, seg_loss, loader, train_cfg, task="seg", extra_state=extra)
    metrics = trainer.fit()
    print(f"{args.model}: step {trainer.step}, train bits/dim {metrics.get('bpd', float('nan')):.4f}")
    print(f"checkpoint: {ckpt_path}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, **metrics}, indent=2))
    return 0
