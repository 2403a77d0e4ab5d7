"""``cnf-teach sr train``: the SR CNF or its factorized baseline on the shared engine (§5.1 of Winkler et al. 2019).

The data are a folder of images (random HR patches), a downsampled-ImageNet folder, or without
``--data`` the images bundled with scikit-image; on downsampled ImageNet ``--eval-every N``
validates on the 10,000 training images held out for validation, never on ImageNet's
validation file, which is the test set.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch

from .common import RunLock, compile_choice, output_file, pick_device, usage_error, write_text
from .sr_inputs import is_imagenet_folder, read_eval_set, read_sr_checkpoint

__all__ = ["run_train"]

log = logging.getLogger(__name__)


def _train_set(args: argparse.Namespace, scale: int, patch: int) -> Any:
    from ..data.imagenet import DownsampledImageNet
    from ..data.images import SRImageFolder
    from ..data.natural import natural_sr_dataset

    try:
        if args.data is None:
            return natural_sr_dataset("train", scale=scale, patch_size=patch, repeat=64)
        path = Path(args.data)
        if is_imagenet_folder(path):
            return DownsampledImageNet(path, "train", scale=scale, cache_lr=True)  # LR computed once
        return SRImageFolder(path, scale=scale, patch_size=patch, repeat=16)
    except ValueError as err:
        raise usage_error(err) from None


def _same_size_bits_totals(model: torch.nn.Module, data: Any, batch_size: int, shard: Any) -> tuple[float, float]:
    """``(sum of bits/dim, number of images)`` of ``shard``'s share of equal-sized ``(lr, hr)`` pairs
    (downsampled ImageNet), in batches."""
    device = next(model.parameters()).device
    loader = torch.utils.data.DataLoader(shard.subset(data), batch_size=max(1, batch_size), shuffle=False)
    total, count = 0.0, 0
    for lr, hr in loader:  # uint8 [B, 3, S/s, S/s], [B, 3, S, S]
        bpd = model.bits_per_dim(hr.to(device), lr.to(device))  # [B]
        total, count = total + float(bpd.sum()), count + len(bpd)
    return total, count


def run_train(args: argparse.Namespace) -> int:
    """``sr train``: check the outputs, lock the run folder, then train (see :func:`_train`)."""
    from ..engine import CHECKPOINT_NAME, distributed_info

    if not args.out.strip():
        raise usage_error("--out is empty; pass the run folder")
    json_path = output_file(args.json, "--json", args.force)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise usage_error(f"--out {out} is a file, not a folder; choose another --out")
    if distributed_info()[0] != 0:  # under torchrun rank 0 holds the lock for every process
        return _train(args, json_path)
    with RunLock(out):  # before the checks: a second run on this folder stops here
        last = out / CHECKPOINT_NAME
        continuing = args.resume is not None and Path(args.resume).resolve() == last.resolve()
        if last.exists() and not continuing and not args.force:
            raise usage_error(
                f"{last} exists (an earlier run); pass --resume {last} to continue it, --force to replace it, "
                "or choose another --out"
            )
        return _train(args, json_path)


def _train(args: argparse.Namespace, json_path: Path | None) -> int:
    from ..data.imagenet import DownsampledImageNet
    from ..engine import ShardedEval, TrainConfig, Trainer, TrainingDiverged, make_loader
    from ..errors import UsageError
    from ..super_resolution.checkpoint import sr_checkpoint_state
    from ..super_resolution.config import SRConfig
    from ..super_resolution.evaluation import dataset_bits_totals
    from ..super_resolution.model import build_sr_model, sr_loss

    try:
        config = SRConfig.preset(args.config)
        overrides = {"dequantization": args.dequantization, "patch": args.patch}
        overrides.update({"batch_size": args.batch_size, "lr": args.lr, "train_steps": args.steps})
        config = SRConfig.from_dict({**config.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
    except ValueError as err:
        raise usage_error(err) from None
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    data = _train_set(args, config.scale, config.patch)
    try:
        loader = make_loader(data, config.batch_size, seed=args.seed, num_workers=args.workers, device=device)
    except ValueError as err:
        raise usage_error(err) from None
    eval_fn = None
    eval_folder = args.eval_data
    if eval_folder is None and args.data is not None and args.eval_every > 0 and is_imagenet_folder(Path(args.data)):
        eval_folder = args.data  # validate on the hold-out of the training files
    if eval_folder:
        # Sharded: under torchrun every process scores its share and the engine adds the totals.
        eval_set = read_eval_set(eval_folder, config.scale, imagenet_split="holdout")
        if isinstance(eval_set, DownsampledImageNet):
            log.info("validating on %d held-out training images of %s", len(eval_set), eval_folder)

            def eval_totals(model: torch.nn.Module, shard: Any) -> dict[str, tuple[float, float]]:
                return {"bpd": _same_size_bits_totals(model, eval_set, config.batch_size, shard)}

        else:

            def eval_totals(model: torch.nn.Module, shard: Any) -> dict[str, tuple[float, float]]:
                return {"bpd": dataset_bits_totals(model, eval_set, rank=shard.rank, world_size=shard.world_size)}

        eval_fn = ShardedEval(eval_totals)
    model = build_sr_model(config, args.model)
    train_cfg = TrainConfig(
        steps=config.train_steps,
        lr=config.lr,
        batch_size=config.batch_size,
        grad_clip=config.grad_clip,
        warmup_steps=config.warmup_steps,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        out_dir=args.out,
        device=str(device),
        amp=args.amp,
        compile=compile_choice(args.compile, config.train_steps, device),
        seed=args.seed,
    )
    extra = sr_checkpoint_state(config, args.model)
    if args.resume:
        ckpt = read_sr_checkpoint(args.resume)
        if _architecture(ckpt.get("extra") or {}) != _architecture(extra):
            raise UsageError(
                f"{args.resume} holds another model or architecture; pass the --config and --model it was trained with"
            )
        try:
            trainer = Trainer.resume(args.resume, model, sr_loss, loader, train_cfg, eval_fn, task="sr")
        except ValueError as err:
            raise usage_error(err) from None
    else:
        trainer = Trainer(model, sr_loss, loader, train_cfg, eval_fn, task="sr", extra_state=extra)
    log.info("training the %s (%s, %d parameters) on %s", args.model, config.name, _count(model), device)
    try:
        metrics = trainer.fit()
    except TrainingDiverged as err:
        raise UsageError(str(err)) from None
    if trainer.rank != 0:  # under torchrun, one report
        return 0
    print(
        f"{args.model} {config.name}: step {trainer.step}, train bits/dim {metrics.get('bpd', float('nan')):.4f}"
        + (f", eval bits/dim {metrics['eval_bpd']:.4f}" if "eval_bpd" in metrics else "")
        + f"; checkpoint {trainer.checkpoint_path}"
    )
    if json_path is not None:
        write_text(json_path, json.dumps(metrics, indent=2))
    return 0


#: SRConfig fields that only steer training: a resumed run may change them.
_TRAINING_FIELDS = {"name", "patch", "batch_size", "lr", "train_steps", "warmup_steps", "grad_clip"}


def _architecture(extra: dict[str, Any]) -> dict[str, Any]:
    cfg = {k: v for k, v in (extra.get("sr_config") or {}).items() if k not in _TRAINING_FIELDS}
    return {"kind": extra.get("kind"), **cfg}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
