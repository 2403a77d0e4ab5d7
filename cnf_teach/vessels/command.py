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

Length: over 300 lines; five subcommands (info, synth, train, eval, sample) and their one-line
errors, kept together so the CLI of one application reads in one file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

MODEL_CHOICES = ("cnf_binary", "cnf_uniform", "baseline")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("seg", help="retinal vessel segmentation (DRIVE): info, synth, train, eval, sample")
    s = p.add_subparsers(dest="seg_command", metavar="SEG_COMMAND")

    q = s.add_parser("info", help="validate a DRIVE folder and print a summary")
    q.add_argument("--data", required=True, help="DRIVE folder (holding training/ and/or test/)")
    q.add_argument("--json", metavar="OUT", help="write the summary as JSON")
    q.set_defaults(handler=run_info)

    q = s.add_parser("synth", help="write synthetic retinas in DRIVE's layout")
    q.add_argument("--out", required=True, help="destination folder")
    q.add_argument("--train", type=int, default=20, help="training images (default 20)")
    q.add_argument("--test", type=int, default=20, help="test images (default 20)")
    q.add_argument("--size", type=int, default=96, help="height and width in pixels (default 96)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--mc-samples",
        type=int,
        default=200,
        help="annotations drawn per test image to check the exact floors by Monte Carlo (default 200; 0: none)",
    )
    q.set_defaults(handler=run_synth)

    q = s.add_parser("train", help="train a vessel model on the shared engine")
    q.add_argument("--model", choices=MODEL_CHOICES, default="cnf_binary")
    q.add_argument("--config", choices=("paper", "tiny"), default="tiny", help="paper_drive() or tiny() (default)")
    q.add_argument("--data", help="DRIVE folder; default: synthetic retinas written to OUT/synthetic_drive")
    q.add_argument("--out", required=True, help="run folder (checkpoint last.pt, metrics.json)")
    q.add_argument("--steps", type=int, help="optimisation steps (default: the config's epochs x batches)")
    q.add_argument("--lr", type=float, help="learning rate (default: the config's)")
    q.add_argument("--batch-size", type=int, help="batch size (default: the config's)")
    q.add_argument("--pad-to", type=int, help="pad images to this square size (default: the config's)")
    q.add_argument("--no-augment", action="store_true", help="turn off rotation/scale/shear augmentation")
    _downscale_arg(
        q, "shrink every photograph by FACTOR when reading (2: DRIVE at 292x282; default 1, or the resumed run's)"
    )
    q.add_argument(
        "--crop",
        type=int,
        metavar="SIZE",
        help="train on random SIZE x SIZE windows of the padded images (a multiple of 4; default: whole images)",
    )
    q.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    q.add_argument("--checkpoint-every", type=int, default=100)
    q.add_argument(
        "--workers",
        type=int,
        help="data loader worker processes; by default on CUDA the images stay on the GPU and are augmented "
        "there (no workers), elsewhere none",
    )
    q.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--json", metavar="OUT", help="write the final metrics as JSON")
    q.set_defaults(handler=run_train)

    q = s.add_parser("eval", help="bits/dim, PR curve and max F-score on a test split")
    which = q.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a `seg train` checkpoint")
    which.add_argument(
        "--pretrained", metavar="NAME", help="a shipped model (seg-cnf-binary, seg-cnf-uniform, seg-baseline)"
    )
    q.add_argument("--data", required=True, help="DRIVE folder")
    q.add_argument("--split", choices=("test", "training"), default="test")
    q.add_argument("--samples", type=int, help="samples per image for the soft map (default: the config's)")
    _downscale_arg(q, "shrink the whole test images by FACTOR (default: the training run's factor, else 1)")
    q.add_argument("--figures", metavar="DIR", help="write pr_curves.png and segmentations.png there")
    q.add_argument("--device", default="auto")
    q.add_argument("--json", metavar="OUT", help="write the results as JSON")
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
    q.add_argument("--index", type=int, default=0, help="image index in the test split")
    _downscale_arg(q, "with --data: shrink the test image by FACTOR (default: the training run's factor, else 1)")
    q.add_argument("--size", type=int, default=128, help="size of the real photograph (with --retina)")
    q.add_argument("--samples", type=int, default=16)
    q.add_argument("--temperature", type=float, default=1.0)
    q.add_argument("--out", required=True, help="PNG file to write")
    q.add_argument("--device", default="auto")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(handler=run_sample)

    p.set_defaults(handler=lambda args: p.print_help() or 0)


# --- helpers --------------------------------------------------------------------------------------
def _downscale_arg(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--downscale", type=float, metavar="FACTOR", help=help_text)


def _usage(msg: str) -> Exception:
    from ..errors import UsageError

    return UsageError(msg)


def _checked_downscale(value: float | None, default: float) -> float:
    """``--downscale`` as given, or ``default`` when absent; at least 1 (2 halves each side)."""
    factor = default if value is None else value
    if not factor >= 1:  # also refuses NaN
        raise _usage(f"--downscale must be at least 1 (2 halves each side, giving DRIVE at 292x282), got {factor}")
    return float(factor)


def _stored_downscale(extra: Any) -> float:
    """The downscale factor a ``seg train`` run stored in its checkpoint (1 when it stored none)."""
    value = extra.get("downscale") if isinstance(extra, dict) else None
    return float(value) if isinstance(value, (int, float)) and value >= 1 else 1.0


def _read_dataset(root: str, split: str, **kwargs: Any):
    from ..data.drive import DriveDataset, DriveFormatError

    if not Path(root).is_dir():
        raise _usage(f"no DRIVE folder at {root}; pass --data with a folder holding training/ and test/")
    try:
        return DriveDataset(root, split, **kwargs)
    except (DriveFormatError, ValueError) as err:
        raise _usage(str(err)) from err


def _device(name: str) -> torch.device:
    from ..engine import resolve_device

    try:
        return resolve_device(name)
    except ValueError as err:
        raise _usage(str(err)) from err


def load_seg_checkpoint(path: str, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a vessel model from a ``seg train`` checkpoint, read without running code from it.

    Every problem with the file (not found, not a checkpoint, damaged, an older pickled one,
    another task's, a config or tensors that do not make this model) is a one-line usage error.
    """
    from ..engine import load_checkpoint
    from .checkpoint import model_from_checkpoint

    try:
        ckpt = load_checkpoint(path, map_location="cpu")
        model = model_from_checkpoint(ckpt, path)
    except (FileNotFoundError, ValueError) as err:
        raise _usage(str(err)) from None
    return model.to(device).eval(), ckpt


def _model_from_args(args: argparse.Namespace, device: torch.device) -> tuple[torch.nn.Module, str, float]:
    """``(model, kind, training downscale factor)`` from ``--checkpoint`` or ``--pretrained``."""
    if args.pretrained:
        from .. import pretrained

        try:
            model, kind = pretrained.load_for_task(args.pretrained, "seg", device)
        except ValueError as err:
            raise _usage(str(err)) from None
        return model, kind, 1.0
    model, ckpt = load_seg_checkpoint(args.checkpoint, device)
    return model, ckpt["extra"]["model"], _stored_downscale(ckpt["extra"])


# --- handlers -------------------------------------------------------------------------------------
def run_info(args: argparse.Namespace) -> int:
    from ..data.drive import DriveFormatError, drive_summary

    try:
        summary = drive_summary(args.data)
    except DriveFormatError as err:
        raise _usage(str(err)) from err
    for split, s in summary.items():
        print(
            f"{split:9s} {s['images']:3d} images {s['height']}x{s['width']}  "
            f"FOV {100 * s['fov_fraction']:.1f}% of pixels  vessels {100 * s['vessel_fraction_in_fov']:.1f}% of FOV"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..data.synthetic_retina import FLOORS_FILE, RetinaConfig, make_synthetic_drive, read_floors

    if args.train < 0 or args.test < 0 or args.train + args.test == 0:
        raise _usage("--train and --test must be >= 0 and not both 0")
    if args.size < 16:
        raise _usage(f"--size must be at least 16 pixels, got {args.size}")
    if args.mc_samples < 0:
        raise _usage(f"--mc-samples must be >= 0, got {args.mc_samples}")
    config = RetinaConfig(height=args.size, width=args.size)
    make_synthetic_drive(args.out, args.train, args.test, config, args.seed, mc_samples=args.mc_samples)
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


def run_train(args: argparse.Namespace) -> int:
    from ..data.augment import JointAugment
    from ..data.synthetic_retina import make_synthetic_drive
    from ..engine import CHECKPOINT_NAME, TrainConfig, Trainer, load_checkpoint, make_loader
    from .checkpoint import model_from_checkpoint, seg_checkpoint_state, seg_model_spec
    from .config import SegConfig
    from .model import build_seg_model, seg_loss

    out = Path(args.out)
    for name in ("steps", "batch_size", "pad_to"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _usage(f"--{name.replace('_', '-')} must be positive, got {value}")
    if args.lr is not None and args.lr <= 0:
        raise _usage(f"--lr must be positive, got {args.lr}")
    if args.crop is not None and (args.crop < 4 or args.crop % 4):
        raise _usage(f"--crop must be a positive multiple of 4 (2**levels of the flow), got {args.crop}")
    downscale = _checked_downscale(args.downscale, 1.0) if args.downscale is not None else None
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
            raise _usage(f"cannot resume: {err}") from None
        config = SegConfig.from_dict(stored)
        if kind != args.model:
            raise _usage(f"{ckpt_path} holds a {kind!r} model; pass --model {kind}")
        if downscale is None:
            downscale = _stored_downscale(previous.get("extra"))
    elif ckpt_path.exists():
        raise _usage(f"{ckpt_path} exists; pass --resume to continue it or choose another --out")
    downscale = 1.0 if downscale is None else downscale
    data = args.data
    if data is None:
        data = str(out / "synthetic_drive")
        if not Path(data, "training").is_dir():
            log.info("no --data: writing synthetic retinas to %s", data)
            make_synthetic_drive(data, seed=args.seed)
    torch.manual_seed(args.seed)
    augment = None if args.no_augment else JointAugment()
    dataset = _read_dataset(
        data, "training", pad_to=config.pad_to, augment=augment, downscale=downscale, crop=args.crop
    )
    h, w = dataset.images[0].image.shape[:2]
    window = f"random {args.crop}x{args.crop} windows of " if args.crop else ""
    log.info("training on %s%dx%d images (downscale %g), padded to %dx%d", window, h, w, downscale, *dataset.size)
    if len(dataset) < config.batch_size:
        raise _usage(f"{data} has {len(dataset)} training images, fewer than one batch of {config.batch_size}")
    device = _device(args.device)
    if args.workers is not None and args.workers < 0:
        raise _usage(f"--workers must be >= 0, got {args.workers}")
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
            raise _usage(f"cannot resume: {err}") from None
    else:
        trainer = Trainer(model, seg_loss, loader, train_cfg, task="seg", extra_state=extra)
    metrics = trainer.fit()
    print(f"{args.model}: step {trainer.step}, train bits/dim {metrics.get('bpd', float('nan')):.4f}")
    print(f"checkpoint: {ckpt_path}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, **metrics}, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_seg_model
    from .figures import plot_pr_curves, plot_segmentations

    _checked_downscale(args.downscale, 1.0)  # a bad value fails before the model loads
    device = _device(args.device)
    model, kind, trained_downscale = _model_from_args(args, device)
    config = model.config
    samples = args.samples if args.samples is not None else config.eval_samples
    if samples < 1:
        raise _usage(f"--samples must be positive, got {samples}")
    downscale = _checked_downscale(args.downscale, trained_downscale)
    dataset = _read_dataset(args.data, args.split, pad_to=config.pad_to, downscale=downscale)  # whole images
    ev = evaluate_seg_model(model, dataset, num_samples=samples, device=device)
    h, w = dataset.images[0].image.shape[:2]
    summary = {
        "model": kind,
        "split": args.split,
        "samples": samples,
        "downscale": downscale,
        "image_size": [h, w],
        "padded_size": list(dataset.size),
        **ev.summary(),
    }
    line = f"{kind} on {args.split} ({len(dataset)} images, {h}x{w}, downscale {downscale:g}): "
    line += f"max F {ev.max_f:.4f} (threshold {ev.threshold:.2f})"
    if ev.human is not None:
        line += f", second grader F {summary['human_f']:.4f}"
    print(line)
    print(
        f"  bits/dim {ev.bpd:.4f} per image pixel ({h}x{w}), {ev.bpd_fov:.4f} per field-of-view pixel, "
        f"{ev.bpd_padded:.4f} per padded pixel ({dataset.size[0]}x{dataset.size[1]})"
    )
    if args.figures:
        fig_dir = Path(args.figures)
        fig_dir.mkdir(parents=True, exist_ok=True)
        plot_pr_curves({kind: ev}, str(fig_dir / "pr_curves.png"))
        rows = []
        for i, (soft, sample) in enumerate(zip(ev.soft_maps, ev.first_samples, strict=True)):
            im = dataset.images[i]
            rows.append({"photograph": im.image, "ground truth": im.label, "soft map": soft, "sample": sample})
        plot_segmentations(rows, str(fig_dir / "segmentations.png"))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..data.drive import crop_back
    from .evaluation import real_retina
    from .figures import plot_segmentations

    if args.samples < 1:
        raise _usage(f"--samples must be positive, got {args.samples}")
    _checked_downscale(args.downscale, 1.0)  # a bad value fails before the model loads
    device = _device(args.device)
    model, _, trained_downscale = _model_from_args(args, device)
    torch.manual_seed(args.seed)
    if args.retina:
        if args.size < 16 or args.size % 4:
            raise _usage(f"--size must be a multiple of 4 and at least 16, got {args.size}")
        x, fov = real_retina(args.size)
        photo = x[0].permute(1, 2, 0).numpy()
        row: dict[str, Any] = {"photograph": photo}
        box = (0, 0, args.size, args.size)
    else:
        downscale = _checked_downscale(args.downscale, trained_downscale)
        dataset = _read_dataset(args.data, "test", pad_to=model.config.pad_to, downscale=downscale)
        if not 0 <= args.index < len(dataset):
            raise _usage(f"--index must be in 0..{len(dataset) - 1}, got {args.index}")
        item = dataset[args.index]
        x, box = item["x"][None], tuple(int(v) for v in item["box"])
        row = {"photograph": dataset.images[args.index].image, "ground truth": dataset.images[args.index].label}
    x = x.to(device)
    with torch.no_grad():
        draws = [crop_back(s[0, 0].cpu(), box).numpy() for s in model.samples(x, args.samples, args.temperature)]
    row["soft map"] = sum(draws) / len(draws)
    row["sample 1"] = draws[0]
    if len(draws) > 1:
        row["sample 2"] = draws[1]
    plot_segmentations([row], args.out)
    print(f"wrote {args.out}")
    return 0
