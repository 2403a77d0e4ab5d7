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

from .common import RunLock, building_folder, compile_choice, output_file, pick_device, usage_error, write_text
from .seg_inputs import checked_downscale, read_dataset, stored_downscale

__all__ = ["run_train"]

log = logging.getLogger(__name__)


def run_train(args: argparse.Namespace) -> int:
    """``seg train``: check the outputs, lock the run folder, then train (see :func:`_train`)."""
    from ..engine import distributed_info

    if not args.out.strip():
        raise usage_error("--out is empty; pass the run folder")
    json_path = output_file(args.json, "--json", args.force)
    if distributed_info()[0] != 0:  # under torchrun rank 0 holds the lock for every process
        return _train(args, json_path)
    with RunLock(args.out):  # before the checks: a second run on this folder stops here
        return _train(args, json_path)


def _train(args: argparse.Namespace, json_path: Path | None) -> int:
    from ..data.augment import FlipAugment, JointAugment
    from ..data.synthetic_retina import make_synthetic_drive
    from ..engine import CHECKPOINT_NAME, TrainConfig, Trainer, load_checkpoint, make_loader
    from ..vessels.checkpoint import model_from_checkpoint, seg_checkpoint_state, seg_model_spec
    from ..vessels.config import SegConfig
    from ..vessels.model import build_seg_model, seg_loss

    out = Path(args.out)
    if args.crop is not None and args.crop % 4:
        raise usage_error(f"--crop must be a positive multiple of 4 (2**levels of the flow), got {args.crop}")
    downscale = checked_downscale(args.downscale, 1.0) if args.downscale is not None else None
    config = {"paper": SegConfig.paper_drive, "small": SegConfig.small, "tiny": SegConfig.tiny}[args.config]()
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
            with building_folder(Path(data)) as tmp:  # a kill leaves no partial folder under this name
                make_synthetic_drive(tmp, seed=args.seed)
    torch.manual_seed(args.seed)
    kind = "none" if args.no_augment else args.augment
    augment = None if kind == "none" else {"warp": JointAugment, "flip": FlipAugment}[kind]()
    dataset = read_dataset(data, "training", pad_to=config.pad_to, augment=augment, downscale=downscale, crop=args.crop)
    h, w = dataset.images[0].image.shape[:2]
    window = f"random {args.crop}x{args.crop} windows of " if args.crop else ""
    log.info("training on %s%dx%d images (downscale %g), padded to %dx%d", window, h, w, downscale, *dataset.size)
    if len(dataset) < config.batch_size:
        raise usage_error(f"{data} has {len(dataset)} training images, fewer than one batch of {config.batch_size}")
    device = pick_device(args.device)
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
        compile=compile_choice(args.compile, steps, device),
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
    if json_path is not None:
        write_text(json_path, json.dumps({"model": args.model, **metrics}, indent=2))
    return 0
