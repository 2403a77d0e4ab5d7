"""``cnf-teach seg``: retinal-vessel segmentation (Winkler et al. 2019, §5.2) from the command line.

Subcommands:

- ``seg info --data DIR [--json OUT]``: validate a DRIVE folder and summarise it;
- ``seg synth --out DIR``: write synthetic retinas in DRIVE's layout (the offline default), with
  two random graders per test image and their floors in ``test/floors.json``;
- ``seg train --model {cnf_binary,cnf_uniform,baseline} --out DIR [--data DIR]``: train on
  the shared engine (progress bar, checkpoints, ``--resume``, DDP under ``torchrun``);
  without ``--data`` it trains on synthetic retinas written to ``OUT/synthetic_drive``;
  ``--downscale 2`` shrinks real DRIVE photographs to 292x282 and ``--crop SIZE`` trains on
  random square windows: the CPU path on real DRIVE (an addition; see "Readings and deviations");
- ``seg eval --checkpoint CKPT --data DIR``: bits/dim per image pixel, per field-of-view pixel
  and per padded pixel (labelled), max F-score, the second grader's point, figures like the
  paper's Figures 4 and 5, on whole images (downscaled as in training, or by ``--downscale``);
- ``seg sample --checkpoint CKPT``: soft map and samples for a test image, or for
  scikit-image's real fundus photograph (``--retina``).

Errors the user can fix (a bad folder, a checkpoint of the other task) are one line
and exit code 2.

This module holds the parser of the five subcommands, ``seg info`` and ``seg synth``;
:mod:`.seg_train` and :mod:`.seg_eval` hold the others, :mod:`.seg_inputs` what they read.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from .common import (
    MAX_SIDE,
    MAX_STEPS,
    add_compile_flag,
    building_folder,
    float_arg,
    int_arg,
    output_file,
    seed_arg,
    usage_error,
    write_text,
)
from .seg_eval import run_eval, run_sample
from .seg_inputs import load_seg_checkpoint
from .seg_train import run_train

__all__ = [
    "MODEL_CHOICES",
    "load_seg_checkpoint",
    "register",
    "run_eval",
    "run_info",
    "run_sample",
    "run_synth",
    "run_train",
]

log = logging.getLogger(__name__)

MODEL_CHOICES = ("cnf_binary", "cnf_uniform", "baseline")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seg", help="retinal vessel segmentation (DRIVE): info, synth, train, eval, sample")
    s = p.add_subparsers(dest="seg_command", metavar="SEG_COMMAND")

    q = s.add_parser("info", help="validate a DRIVE folder and print a summary")
    q.add_argument("--data", required=True, help="DRIVE folder (holding training/ and/or test/)")
    q.add_argument("--json", metavar="OUT", help="write the summary as JSON")
    q.add_argument("--force", action="store_true", help="replace an existing --json file")
    q.set_defaults(handler=run_info)

    q = s.add_parser("synth", help="write synthetic retinas in DRIVE's layout")
    q.add_argument("--out", required=True, help="destination folder (new, or empty)")
    q.add_argument("--force", action="store_true", help="replace an existing --out folder once the new one is complete")
    q.add_argument("--train", type=int_arg(0, 10_000), default=20, help="training images (default 20)")
    q.add_argument("--test", type=int_arg(0, 10_000), default=20, help="test images (default 20)")
    q.add_argument("--size", type=int_arg(16, 2048), default=96, help="height and width in pixels (default 96)")
    q.add_argument("--seed", type=seed_arg, default=0)
    q.add_argument(
        "--mc-samples",
        type=int_arg(0, 100_000),
        default=200,
        help="annotations drawn per test image to check the exact floors by Monte Carlo (default 200; 0: none)",
    )
    q.set_defaults(handler=run_synth)

    q = s.add_parser("train", help="train a vessel model on the shared engine")
    q.add_argument("--model", choices=MODEL_CHOICES, default="cnf_binary")
    q.add_argument(
        "--config",
        choices=("paper", "small", "tiny"),
        default="tiny",
        help="paper_drive(), small() (the shipped models') or tiny() (default)",
    )
    q.add_argument("--data", help="DRIVE folder; default: synthetic retinas written to OUT/synthetic_drive")
    q.add_argument("--out", required=True, help="run folder (checkpoint last.pt, metrics.json)")
    q.add_argument(
        "--steps", type=int_arg(1, MAX_STEPS), help="optimisation steps (default: the config's epochs x batches)"
    )
    q.add_argument("--lr", type=float_arg(0.0, 10.0, low_open=True), help="learning rate (default: the config's)")
    q.add_argument("--batch-size", type=int_arg(1, 4096), help="batch size (default: the config's)")
    q.add_argument("--pad-to", type=int_arg(4, MAX_SIDE), help="pad images to this square size (default: the config's)")
    q.add_argument(
        "--augment",
        choices=["warp", "flip", "none"],
        default="warp",
        help="warp: the paper's rotation/scale/shear (default); flip: exact mirror images, what the shipped "
        "models train with on synthetic retinas; none",
    )
    q.add_argument("--no-augment", action="store_true", help="the same as --augment none")
    _downscale_arg(
        q, "shrink every photograph by FACTOR when reading (2: DRIVE at 292x282; default 1, or the resumed run's)"
    )
    q.add_argument(
        "--crop",
        type=int_arg(4, MAX_SIDE),
        metavar="SIZE",
        help="train on random SIZE x SIZE windows of the padded images (a multiple of 4; default: whole images)",
    )
    q.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    q.add_argument(
        "--checkpoint-every", type=int_arg(0, MAX_STEPS), default=100, help="(default 100; 0: at the end only)"
    )
    q.add_argument(
        "--workers",
        type=int_arg(0, 256),
        help="data loader worker processes; by default on CUDA the images stay on the GPU and are augmented "
        "there (no workers), elsewhere none",
    )
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    add_compile_flag(q)
    q.add_argument("--seed", type=seed_arg, default=0)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--json", metavar="OUT", help="write the final metrics as JSON")
    q.add_argument("--force", action="store_true", help="replace an existing --json file")
    q.set_defaults(handler=run_train)

    q = s.add_parser("eval", help="bits/dim, PR curve and max F-score on a test split")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a `seg train` checkpoint")
    which.add_argument(
        "--pretrained", metavar="NAME", help="a shipped model (seg-cnf-binary, seg-cnf-uniform, seg-baseline)"
    )
    q.add_argument("--data", required=True, help="DRIVE folder")
    q.add_argument("--split", choices=("test", "training"), default="test")
    q.add_argument(
        "--samples", type=int_arg(1, 10_000), help="samples per image for the soft map (default: the config's)"
    )
    q.add_argument(
        "--bound-samples",
        type=int_arg(1, 4096),
        default=1,
        help="dequantization samples of the CNFs' likelihood bound, importance-weighted (default 1, eq. (5); "
        "more gives a tighter bound on the same model)",
    )
    _downscale_arg(q, "shrink the whole test images by FACTOR (default: the training run's factor, else 1)")
    q.add_argument("--figures", metavar="DIR", help="write pr_curves.png and segmentations.png there")
    q.add_argument("--device", default="auto")
    q.add_argument("--json", metavar="OUT", help="write the results as JSON")
    q.add_argument("--force", action="store_true", help="replace existing --json and --figures files")
    q.set_defaults(handler=run_eval)

    q = s.add_parser("sample", help="soft map and samples of one image")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a `seg train` checkpoint")
    which.add_argument(
        "--pretrained", metavar="NAME", help="a shipped model (seg-cnf-binary, seg-cnf-uniform, seg-baseline)"
    )
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="DRIVE folder (uses its test split)")
    src.add_argument("--retina", action="store_true", help="scikit-image's real fundus photograph")
    q.add_argument("--index", type=int_arg(0, 10**6), default=0, help="image index in the test split")
    _downscale_arg(q, "with --data: shrink the test image by FACTOR (default: the training run's factor, else 1)")
    q.add_argument("--size", type=int_arg(16, 2048), default=128, help="size of the real photograph (with --retina)")
    q.add_argument("--samples", type=int_arg(1, 10_000), default=16)
    q.add_argument("--temperature", type=float_arg(0.0, 100.0), default=1.0)
    q.add_argument("--out", required=True, help="image file to write (.png, .jpg, ...)")
    q.add_argument("--force", action="store_true", help="replace an existing --out file")
    q.add_argument("--device", default="auto")
    q.add_argument("--seed", type=seed_arg, default=0)
    q.set_defaults(handler=run_sample)

    p.set_defaults(handler=lambda args: p.print_help() or 0)


def _downscale_arg(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--downscale", type=float_arg(1.0, 64.0), metavar="FACTOR", help=help_text)


def run_info(args: argparse.Namespace) -> int:
    from ..data.drive import DriveFormatError, drive_summary

    json_path = output_file(args.json, "--json", args.force)
    try:
        summary = drive_summary(args.data)
    except DriveFormatError as err:
        raise usage_error(str(err)) from err
    for split, s in summary.items():
        print(
            f"{split:9s} {s['images']:3d} images {s['height']}x{s['width']}  "
            f"FOV {100 * s['fov_fraction']:.1f}% of pixels  vessels {100 * s['vessel_fraction_in_fov']:.1f}% of FOV"
        )
    if json_path is not None:
        write_text(json_path, json.dumps(summary, indent=2))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic_retina import FLOORS_FILE, RetinaConfig, make_synthetic_drive, read_floors

    if args.train + args.test == 0:
        raise usage_error("--train and --test are both 0; nothing to write")
    if not args.out.strip():
        raise usage_error("--out is empty; pass the destination folder")
    config = RetinaConfig(height=args.size, width=args.size)
    with building_folder(Path(args.out), args.force) as tmp:  # complete, or not there at all
        make_synthetic_drive(tmp, args.train, args.test, config, args.seed, mc_samples=args.mc_samples)
    print(f"wrote {args.train} training and {args.test} test synthetic retinas to {args.out}")
    if args.test:
        floors = read_floors(args.out)
        mean, std = floors["mean"], floors["std"]
        print(f"floors of the {args.test} test annotations (bits/dim, exact; per image in test/{FLOORS_FILE}):")
        for name, label in (("entropy", "entropy floor H(Y|x)/D"), ("factorized", "factorized floor sum_j H(Y_j|x)/D")):
            print(
                f"  {label:34s} {mean[name + '_per_pixel']:.4f} +- {std[name + '_per_pixel']:.4f} per image pixel, "
                f"{mean[name + '_per_fov_pixel']:.4f} +- {std[name + '_per_fov_pixel']:.4f} per FOV pixel"
            )
    return 0
