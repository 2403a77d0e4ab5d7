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

This module holds the parser of the four subcommands, ``sr sample`` and ``sr prepare``;
:mod:`.sr_train` and :mod:`.sr_eval` hold the two long ones, :mod:`.sr_inputs` what they read.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from .common import (
    IMAGE_SUFFIXES,
    MAX_SIDE,
    MAX_STEPS,
    add_compile_flag,
    float_arg,
    int_arg,
    output_file,
    pick_device,
    seed_arg,
    usage_error,
    write_file,
)
from .sr_eval import BICUBIC_SCALES, format_table, run_eval
from .sr_inputs import model_from_args
from .sr_train import run_train

__all__ = ["BICUBIC_SCALES", "format_table", "register", "run_eval", "run_prepare", "run_sample", "run_train"]

log = logging.getLogger(__name__)


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
    t.add_argument("--steps", type=int_arg(1, MAX_STEPS), help="training steps (default: the config's)")
    t.add_argument("--batch-size", type=int_arg(1, 65536), help="batch size per process (default: the config's)")
    t.add_argument("--lr", type=float_arg(0.0, 10.0, low_open=True), help="learning rate (default: the config's)")
    t.add_argument("--patch", type=int_arg(1, MAX_SIDE), help="HR patch size for image folders (default: the config's)")
    t.add_argument(
        "--eval-data",
        metavar="DIR",
        help="validation set scored (bits/dim) every --eval-every steps: an image folder, or a downsampled-ImageNet "
        "folder whose held-out training images are used (default with ImageNet --data: its hold-out)",
    )
    t.add_argument(
        "--eval-every", type=int_arg(0, MAX_STEPS), default=0, help="validate every N steps (default 0: never)"
    )
    t.add_argument(
        "--checkpoint-every", type=int_arg(0, MAX_STEPS), default=500, help="(default 500; 0: at the end only)"
    )
    t.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint (exactly)")
    t.add_argument(
        "--workers",
        type=int_arg(0, 256),
        default=None,
        help="data loader worker processes (default: up to 8 per GPU on CUDA, none elsewhere)",
    )
    _device_args(t)
    t.add_argument("--amp", action="store_true", help="bf16 mixed precision (CUDA)")
    add_compile_flag(t)
    t.add_argument("--seed", type=seed_arg, default=0)
    t.add_argument("--json", metavar="OUT", help="write the final metrics as JSON")
    t.add_argument("--force", action="store_true", help="replace an existing run in --out, and an existing --json file")
    t.set_defaults(handler=run_train)

    e = sr.add_parser("eval", help="bits/dim, PSNR and SSIM per image set (Table 2 of the paper)")
    e.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint (or use --model bicubic)")
    e.add_argument("--pretrained", metavar="NAME", help="a shipped model instead of --checkpoint (sr-cnf-small, ...)")
    e.add_argument("--model", choices=("checkpoint", "bicubic"), default="checkpoint")
    e.add_argument("--data", metavar="DIR", action="append", help="image folder; repeat for several sets")
    e.add_argument("--scale", type=int_arg(1, 16), default=2)
    e.add_argument(
        "--temperature", type=float_arg(0.0, 100.0), default=0.8, help="CNF sampling temperature (default 0.8)"
    )
    e.add_argument("--max-images", type=int_arg(1, 10**9), help="evaluate only the first N images of each set")
    e.add_argument(
        "--protocol",
        choices=("crops", "whole"),
        default="crops",
        help="bits/dim over random crops (default, the paper's §5.1.1) or over whole images (edges replicated)",
    )
    e.add_argument(
        "--crops",
        type=int_arg(1, 10**6),
        default=1000,
        help="random crops per set with --protocol crops (default 1000)",
    )
    e.add_argument("--crop-size", type=int_arg(1, MAX_SIDE), default=128, help="HR side of the crops (default 128)")
    e.add_argument(
        "--padding",
        choices=("square", "replicate"),
        default="square",
        help="test-time padding of the LR input for PSNR/SSIM: zeros at the right and bottom to a square "
        "(default, the paper's §5.1) or the edges replicated to the next multiple the flow needs",
    )
    e.add_argument("--seed", type=seed_arg, default=0, help="seed of the samples and of the crops (default 0)")
    e.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    e.add_argument("--force", action="store_true", help="replace an existing --json file")
    _device_args(e)
    e.set_defaults(handler=run_eval)

    s = sr.add_parser("sample", help="upscale one image with a trained model")
    s.add_argument("--checkpoint", metavar="CKPT", help="model checkpoint")
    s.add_argument("--pretrained", metavar="NAME", help="a shipped model instead of --checkpoint (sr-cnf-small, ...)")
    s.add_argument("--image", metavar="IN", required=True)
    s.add_argument("--out", metavar="OUT", required=True, help="the upscaled image (.png, .jpg, .bmp, .tif)")
    s.add_argument("--force", action="store_true", help="replace an existing --out file")
    s.add_argument("--temperature", type=float_arg(0.0, 100.0), default=0.8)
    s.add_argument("--seed", type=seed_arg, default=0)
    _device_args(s)
    s.set_defaults(handler=run_sample)

    c = sr.add_parser(
        "prepare", help="memory-mapped copies of a downsampled-ImageNet folder, shared by every process of a machine"
    )
    c.add_argument("--data", metavar="DIR", required=True, help="folder of downsampled-ImageNet npz files")
    c.add_argument("--scale", type=int_arg(1, 16), default=2, help="SR factor of the LR copies (default 2)")
    c.set_defaults(handler=run_prepare)


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")


# --- sample ----------------------------------------------------------------------------------
def run_sample(args: argparse.Namespace) -> int:
    from PIL import Image

    from ..data.images import load_image
    from ..errors import UsageError
    from ..super_resolution.evaluation import make_upsample_fn

    out_path = output_file(args.out, "--out", args.force, IMAGE_SUFFIXES)
    if not Path(args.image).is_file():
        raise UsageError(f"image {args.image} not found (or not a regular file)")
    device = pick_device(args.device)
    model = model_from_args(args, device)
    try:
        img, gray = load_image(args.image)
    except ValueError as err:
        raise usage_error(err) from None
    torch.manual_seed(args.seed)
    lr = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0)  # [1, 3, h, w] uint8
    sr = make_upsample_fn(model, args.temperature)(lr)[0].cpu()  # [3, s h, s w] uint8
    out = sr[0].numpy() if gray else sr.permute(1, 2, 0).numpy()
    assert out_path is not None
    try:
        write_file(out_path, Image.fromarray(np.ascontiguousarray(out)).save)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot write {args.out}: {err}") from None
    print(f"wrote {args.out} ({out.shape[1]}x{out.shape[0]}) from {args.image} at temperature {args.temperature:g}")
    return 0


# --- prepare ---------------------------------------------------------------------------------
def run_prepare(args: argparse.Namespace) -> int:
    from ..data.imagenet import write_imagenet_cache
    from ..data.imagenet_cache import CACHE_FOLDER

    try:
        files = write_imagenet_cache(args.data, scale=args.scale)
    except ValueError as err:
        raise usage_error(err) from None
    print(f"{len(files)} files ready in {Path(args.data) / CACHE_FOLDER}; training reads them memory-mapped")
    return 0
