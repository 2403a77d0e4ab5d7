"""``cnf-teach sr``: train, evaluate and sample the super-resolution models (Winkler et al. 2019, §5.1).

- ``sr train --config tiny|small|paper-imagenet32|paper-imagenet64 [--data DIR] [--model cnf|baseline]``
  trains the SR CNF (or its factorized baseline) with :mod:`cnf_teach.engine`; ``DIR`` is a
  folder of images (random HR patches of ``--patch`` pixels) or of downsampled-ImageNet npz
  files; without ``--data`` it trains on the images bundled with scikit-image. On
  downsampled ImageNet, ``--eval-every N`` validates on the 10,000 training images held out
  for validation (``split="holdout"``, §5.1 of the paper), never on ImageNet's validation file,
  which is the test set.
- ``sr eval --checkpoint CKPT --data DIR [--data DIR2 ...] --scale 2 [--json OUT]`` prints a
  table like Table 2 of the paper (bits/dim, PSNR, SSIM per set); ``--model bicubic`` gives
  the bicubic row without a checkpoint. The protocol is the paper's by default (§5.1, §5.1.1):
  bits/dim averaged over ``--crops 1000`` seeded random ``--crop-size 128`` crops
  (``--protocol crops``), and the LR input padded with zeros at the right and bottom to a
  square, the output cropped to the exact shape for PSNR/SSIM (``--padding square``);
  ``--protocol whole`` and ``--padding replicate`` are the project's variants (see "Readings
  and deviations").
- ``sr sample --checkpoint CKPT --image IN.png --temperature 0.8 --out OUT.png`` upscales one image.
- ``sr prepare --data DIR [--scale 2]`` writes memory-mapped copies of a downsampled-ImageNet
  folder (HR and LR images), so that the processes of a multi-GPU run share one copy in RAM
  (:mod:`cnf_teach.data.imagenet_cache`).

Every problem with the input (missing or empty folder, corrupt image, image smaller than the
patch, unsupported scale, a checkpoint of another task) is one line on stderr and exit code 2.

Length: over 300 lines; four subcommands (train, eval, sample, prepare), their flags and one-line
errors, kept together so the CLI of one application reads in one file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

#: Scales the bicubic row can be computed at (the benchmark sets' usual factors).
BICUBIC_SCALES = (2, 3, 4)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sr", help="super-resolution: train, evaluate and sample the SR CNF and its baseline")
    sr = p.add_subparsers(dest="sr_command", metavar="SR_COMMAND")
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])

    t = sr.add_parser("train", help="train the SR CNF or the factorized baseline")
    t.add_argument("--config", default="tiny", help="tiny | small | paper-imagenet32 | paper-imagenet64 (default tiny)")
    t.add_argument("--data", metavar="DIR", help="image folder or downsampled-ImageNet folder (default: bundled)")
    t.add_argument("--model", choices=("cnf", "baseline"), default="cnf", help="which model (default cnf)")
    t.add_argument("--dequantization", choices=("uniform", "variational"), help="override the config's")
    t.add_argument("--out", metavar="DIR", default="runs/sr", help="checkpoint folder (default runs/sr)")
    t.add_argument("--steps", type=int, help="training steps (default: the config's)")
    t.add_argument("--batch-size", type=int, help="batch size per process (default: the config's)")
    t.add_argument("--lr", type=float, help="learning rate (default: the config's)")
    t.add_argument("--patch", type=int, help="HR patch size for image folders (default: the config's)")
    t.add_argument(
        "--eval-data",
        metavar="DIR",
        help="validation set scored (bits/dim) every --eval-every steps: an image folder, or a downsampled-ImageNet "
        "folder whose held-out training images are used (default with ImageNet --data: its hold-out)",
    )
    t.add_argument("--eval-every", type=int, default=0, help="validate every N steps (default 0: never)")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint (exactly)")
    t.add_argument(
        "--workers",
        type=int,
        default=None,
        help="data loader worker processes (default: up to 8 per GPU on CUDA, none elsewhere)",
    )
    _device_args(t)
    t.add_argument("--amp", action="store_true", help="bf16 mixed precision (CUDA)")
    t.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--json", metavar="OUT", help="write the final metrics as JSON")
    t.set_defaults(handler=run_train)

    e = sr.add_parser("eval", help="bits/dim, PSNR and SSIM per image set (Table 2 of the paper)")
    e.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint (or use --model bicubic)")
    e.add_argument("--pretrained", metavar="NAME", help="a shipped model instead of --checkpoint (sr-cnf-small, ...)")
    e.add_argument("--model", choices=("checkpoint", "bicubic"), default="checkpoint")
    e.add_argument("--data", metavar="DIR", action="append", help="image folder; repeat for several sets")
    e.add_argument("--scale", type=int, default=2)
    e.add_argument("--temperature", type=float, default=0.8, help="CNF sampling temperature (default 0.8)")
    e.add_argument("--max-images", type=int, help="evaluate only the first N images of each set")
    e.add_argument(
        "--protocol",
        choices=("crops", "whole"),
        default="crops",
        help="bits/dim over random crops (default, the paper's §5.1.1) or over whole images (edges replicated)",
    )
    e.add_argument("--crops", type=int, default=1000, help="random crops per set with --protocol crops (default 1000)")
    e.add_argument("--crop-size", type=int, default=128, help="HR side of the crops (default 128)")
    e.add_argument(
        "--padding",
        choices=("square", "replicate"),
        default="square",
        help="test-time padding of the LR input for PSNR/SSIM: zeros at the right and bottom to a square "
        "(default, the paper's §5.1) or the edges replicated to the next multiple the flow needs",
    )
    e.add_argument("--seed", type=int, default=0, help="seed of the samples and of the crops (default 0)")
    e.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    _device_args(e)
    e.set_defaults(handler=run_eval)

    s = sr.add_parser("sample", help="upscale one image with a trained model")
    s.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint")
    s.add_argument("--pretrained", metavar="NAME", help="a shipped model instead of --checkpoint (sr-cnf-small, ...)")
    s.add_argument("--image", metavar="IN", required=True)
    s.add_argument("--out", metavar="OUT", required=True)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--seed", type=int, default=0)
    _device_args(s)
    s.set_defaults(handler=run_sample)

    c = sr.add_parser(
        "prepare", help="memory-mapped copies of a downsampled-ImageNet folder, shared by every process of a machine"
    )
    c.add_argument("--data", metavar="DIR", required=True, help="folder of downsampled-ImageNet npz files")
    c.add_argument("--scale", type=int, default=2, help="SR factor of the LR copies (default 2)")
    c.set_defaults(handler=run_prepare)


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")


# --- shared helpers --------------------------------------------------------------------------
def _usage(err: Exception) -> Exception:
    from ..errors import UsageError

    return UsageError(str(err).splitlines()[0] if str(err) else type(err).__name__)


def _device(name: str) -> torch.device:
    from ..engine import resolve_device

    try:
        return resolve_device(name)
    except ValueError as err:
        raise _usage(err) from None


def _is_imagenet_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*_data_batch_*.npz")) or (path / "val_data.npz").is_file()


def _eval_set(folder: str, scale: int, imagenet_split: str = "val") -> Any:
    """Whole-image (LR, HR) pairs of one folder of images, or of a downsampled-ImageNet folder.

    Args:
        folder: An image folder, or a folder of downsampled-ImageNet npz files.
        scale: SR factor.
        imagenet_split: Which ImageNet images: ``"val"`` (ImageNet's validation file, the paper's
            test set; for ``sr eval``) or ``"holdout"`` (the 10,000 held-out training images, the
            paper's validation set; for validation during ``sr train``).
    """
    from ..data.imagenet import DownsampledImageNet
    from ..data.images import SRImageFolder

    path = Path(folder)
    try:
        if _is_imagenet_folder(path):
            return DownsampledImageNet(path, imagenet_split, scale=scale)
        return SRImageFolder(path, scale=scale)
    except ValueError as err:
        raise _usage(err) from None


def _read_checkpoint(path: str) -> dict[str, Any]:
    """The checkpoint at ``path``, read without running code and checked to describe an SR model."""
    from ..engine import load_checkpoint
    from ..errors import UsageError
    from .checkpoint import sr_model_spec

    try:
        ckpt = load_checkpoint(path)
        sr_model_spec(ckpt, path)
    except FileNotFoundError:
        raise UsageError(f"checkpoint {path} not found; pass the last.pt written by 'cnf-teach sr train'") from None
    except ValueError as err:
        raise _usage(err) from None
    return ckpt


def _model_from_args(args: argparse.Namespace, device: torch.device) -> Any:
    """The model named by ``--checkpoint`` or ``--pretrained`` (exactly one of them)."""
    from ..errors import UsageError

    if bool(args.checkpoint) == bool(args.pretrained):
        raise UsageError("pass either --checkpoint CKPT or --pretrained NAME (one of them)")
    if args.pretrained:
        from .. import pretrained

        try:
            return pretrained.load_for_task(args.pretrained, "sr", device)[0]
        except ValueError as err:
            raise _usage(err) from None
    return _load_model(args.checkpoint, device)


def _load_model(path: str, device: torch.device) -> Any:
    from .checkpoint import model_from_checkpoint

    ckpt = _read_checkpoint(path)
    try:
        return model_from_checkpoint(ckpt, path).to(device)
    except ValueError as err:
        raise _usage(err) from None


# --- train -----------------------------------------------------------------------------------
def _train_set(args: argparse.Namespace, scale: int, patch: int) -> Any:
    from ..data.imagenet import DownsampledImageNet
    from ..data.images import SRImageFolder
    from ..data.natural import natural_sr_dataset

    try:
        if args.data is None:
            return natural_sr_dataset("train", scale=scale, patch_size=patch, repeat=64)
        path = Path(args.data)
        if _is_imagenet_folder(path):
            return DownsampledImageNet(path, "train", scale=scale, cache_lr=True)  # LR computed once
        return SRImageFolder(path, scale=scale, patch_size=patch, repeat=16)
    except ValueError as err:
        raise _usage(err) from None


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
    from ..data.imagenet import DownsampledImageNet
    from ..engine import ShardedEval, TrainConfig, Trainer, TrainingDiverged, make_loader
    from ..errors import UsageError
    from .checkpoint import sr_checkpoint_state
    from .config import SRConfig
    from .evaluation import dataset_bits_totals
    from .model import build_sr_model, sr_loss

    try:
        config = SRConfig.preset(args.config)
        overrides = {"dequantization": args.dequantization, "patch": args.patch}
        overrides.update({"batch_size": args.batch_size, "lr": args.lr, "train_steps": args.steps})
        config = SRConfig.from_dict({**config.to_dict(), **{k: v for k, v in overrides.items() if v is not None}})
    except ValueError as err:
        raise _usage(err) from None
    if config.train_steps < 1 or config.batch_size < 1 or config.lr <= 0:
        raise UsageError("--steps and --batch-size must be positive and --lr > 0")
    device = _device(args.device)
    torch.manual_seed(args.seed)
    data = _train_set(args, config.scale, config.patch)
    try:
        loader = make_loader(data, config.batch_size, seed=args.seed, num_workers=args.workers, device=device)
    except ValueError as err:
        raise _usage(err) from None
    eval_fn = None
    eval_folder = args.eval_data
    if eval_folder is None and args.data is not None and args.eval_every > 0 and _is_imagenet_folder(Path(args.data)):
        eval_folder = args.data  # validate on the hold-out of the training files
    if eval_folder:
        # Sharded: under torchrun every process scores its share and the engine adds the totals.
        eval_set = _eval_set(eval_folder, config.scale, imagenet_split="holdout")
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
        compile=args.compile,
        seed=args.seed,
    )
    extra = sr_checkpoint_state(config, args.model)
    if args.resume:
        ckpt = _read_checkpoint(args.resume)
        if _architecture(ckpt.get("extra") or {}) != _architecture(extra):
            raise UsageError(
                f"{args.resume} holds another model or architecture; pass the --config and --model it was trained with"
            )
        try:
            trainer = Trainer.resume(args.resume, model, sr_loss, loader, train_cfg, eval_fn, task="sr")
        except ValueError as err:
            raise _usage(err) from None
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
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, indent=2))
    return 0


#: SRConfig fields that only steer training: a resumed run may change them.
_TRAINING_FIELDS = {"name", "patch", "batch_size", "lr", "train_steps", "warmup_steps", "grad_clip"}


def _architecture(extra: dict[str, Any]) -> dict[str, Any]:
    cfg = {k: v for k, v in (extra.get("sr_config") or {}).items() if k not in _TRAINING_FIELDS}
    return {"kind": extra.get("kind"), **cfg}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- eval ------------------------------------------------------------------------------------
def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_table(results: dict[str, dict[str, Any]], method: str, protocol: str = "") -> str:
    """A text table in the layout of Table 2 of the paper: one row per set.

    Args:
        results: Per set: ``images``, ``bpd``, ``psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb``.
        method: The row's method, printed above the table.
        protocol: A line saying how bits/dim and PSNR/SSIM were measured (omitted when empty).
    """
    head = f"{'set':<12} {'images':>6} {'bpd':>7} {'PSNR-Y':>8} {'SSIM-Y':>7} {'PSNR-RGB':>9} {'SSIM-RGB':>9}"
    lines = [f"method: {method}", *([protocol] if protocol else []), head, "-" * len(head)]
    for name, r in results.items():
        lines.append(
            f"{name:<12} {r['images']:>6} {_fmt(r['bpd'], 3):>7} {_fmt(r['psnr_y'], 2):>8} "
            f"{_fmt(r['ssim_y'], 4):>7} {_fmt(r['psnr_rgb'], 2):>9} {_fmt(r['ssim_rgb'], 4):>9}"
        )
    return "\n".join(lines)


class _Subset(torch.utils.data.Dataset):
    def __init__(self, data: Any, n: int) -> None:
        self.data, self.n = data, min(n, len(data))
        self.gray = list(getattr(data, "gray", [False] * len(data)))[: self.n]
        self.names = list(getattr(data, "names", [f"image_{i}" for i in range(len(data))]))[: self.n]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.data[i]


def run_eval(args: argparse.Namespace) -> int:
    from ..data.natural import natural_sr_dataset
    from ..errors import UsageError
    from .evaluation import dataset_bits_per_dim, evaluate_sr, make_upsample_fn
    from .model import SuperResolutionCNF

    device = _device(args.device)
    if args.max_images is not None and args.max_images < 1:
        raise UsageError("--max-images must be >= 1")
    if args.crops < 1 or args.crop_size < 1:
        raise UsageError(f"--crops and --crop-size must be positive, got {args.crops} and {args.crop_size}")
    model = None
    if args.model == "bicubic":
        if args.checkpoint or args.pretrained:
            raise UsageError("--model bicubic takes no --checkpoint or --pretrained")
        if args.scale not in BICUBIC_SCALES:
            raise UsageError(f"unsupported scale {args.scale}; use one of {', '.join(map(str, BICUBIC_SCALES))}")
        method, upsample_fn = "bicubic", None
    else:
        if not args.checkpoint and not args.pretrained:
            raise UsageError("pass --checkpoint CKPT or --pretrained NAME (or --model bicubic for the bicubic row)")
        model = _model_from_args(args, device)
        if args.scale != model.config.scale:
            raise UsageError(
                f"unsupported scale {args.scale}: this model was trained for {model.config.scale}x; "
                f"pass --scale {model.config.scale}"
            )
        cnf = isinstance(model, SuperResolutionCNF)
        temperature = args.temperature if cnf else 0.0
        method = f"CNF (tau={temperature:g})" if cnf else "baseline (mode)"
        upsample_fn = make_upsample_fn(model, temperature, padding=args.padding)
    sets: dict[str, Any] = {}
    if not args.data:
        try:
            sets["natural"] = natural_sr_dataset("test", scale=args.scale)
        except ValueError as err:
            raise _usage(err) from None
    for folder in args.data or []:
        name = Path(folder).name or str(folder)
        sets[name if name not in sets else str(folder)] = _eval_set(folder, args.scale)
    results: dict[str, dict[str, Any]] = {}
    for name, data in sets.items():
        if args.max_images is not None:
            data = _Subset(data, args.max_images)
        torch.manual_seed(args.seed)
        protocol = args.protocol
        if (
            model is not None
            and protocol == "crops"
            and any(min(data[i][1].shape[-2:]) < args.crop_size for i in range(len(data)))
        ):
            protocol = "whole"  # as dataset_bits_per_dim does: some image is smaller than a crop
            log.info("%s: some images are smaller than %d pixels; bits/dim over whole images", name, args.crop_size)
        try:
            r = evaluate_sr(data, scale=args.scale, upsample_fn=upsample_fn, progress=False)
            bpd = None
            if model is not None:
                bpd = dataset_bits_per_dim(
                    model, data, protocol=protocol, crops=args.crops, crop_size=args.crop_size, seed=args.seed
                )
        except ValueError as err:
            raise _usage(err) from None
        results[name] = {
            "bpd_protocol": protocol if model is not None else None,
            "psnr_y": r["psnr_y"],
            "ssim_y": r["ssim_y"],
            "psnr_rgb": r["psnr_rgb"],
            "ssim_rgb": r["ssim_rgb"],
            "bpd": bpd,
            "images": int(r["images"]),
        }
    line = ""  # how bits/dim and the padding were chosen (the bicubic row has neither)
    if model is not None:
        crops = f"{args.crops} random {args.crop_size}x{args.crop_size} crops (seed {args.seed})"
        line = f"bits/dim: {'mean over ' + crops if args.protocol == 'crops' else 'whole images'}; "
        line += f"padding for PSNR/SSIM: {args.padding}"
        if any(r["bpd_protocol"] != args.protocol for r in results.values()):
            line += f" (sets with images under {args.crop_size} pixels: whole images)"
    print(format_table(results, method, line))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


# --- sample ----------------------------------------------------------------------------------
def run_sample(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..data.images import load_image
    from ..errors import UsageError
    from .evaluation import make_upsample_fn

    device = _device(args.device)
    if args.temperature < 0:
        raise UsageError(f"--temperature must be >= 0, got {args.temperature}")
    model = _model_from_args(args, device)
    if not Path(args.image).is_file():
        raise UsageError(f"image {args.image} not found")
    try:
        img, gray = load_image(args.image)
    except ValueError as err:
        raise _usage(err) from None
    torch.manual_seed(args.seed)
    lr = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0)  # [1, 3, h, w] uint8
    sr = make_upsample_fn(model, args.temperature)(lr)[0].cpu()  # [3, s h, s w] uint8
    out = sr[0].numpy() if gray else sr.permute(1, 2, 0).numpy()
    try:
        Image.fromarray(np.ascontiguousarray(out)).save(args.out)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot write {args.out}: {err}") from None
    print(f"wrote {args.out} ({out.shape[1]}x{out.shape[0]}) from {args.image} at temperature {args.temperature:g}")
    return 0


# --- prepare ---------------------------------------------------------------------------------
def run_prepare(args: argparse.Namespace) -> int:
    from ..data.imagenet import write_imagenet_cache
    from ..data.imagenet_cache import CACHE_FOLDER

    if args.scale < 1:
        raise _usage(f"--scale must be positive, got {args.scale}")
    try:
        files = write_imagenet_cache(args.data, scale=args.scale)
    except ValueError as err:
        raise _usage(err) from None
    print(f"{len(files)} files ready in {Path(args.data) / CACHE_FOLDER}; training reads them memory-mapped")
    return 0
