"""Tables 1 and 2 of Winkler et al. 2019 at CPU scale: the SR CNF against its parameter-matched factorized baseline.

Trains an SR config (``--config``, default ``tiny``) as a CNF and as the factorized
discretized-logistic baseline (RRDB growth chosen so that both have the same number of
parameters) on random HR patches of T91, for the same number of steps (``--steps``), once per
seed (``--seeds``, default 0 1 2: initialisation, data order and dequantization noise change),
then evaluates both on Set5 and Set14 (2x) with the paper's protocol (§5.1.1):

- bits/dim of HR given LR averaged over random 128x128 crops (``--crops``; the paper takes 1000),
  an upper bound for the CNF and exact for the baseline (Table 1's comparison);
- PSNR / SSIM on Y (border 2) of whole images zero-padded at the right and bottom to a square
  and cropped back to the exact shape: bicubic, the baseline's per-pixel mode, and CNF samples at
  temperatures 0, 0.5 and 0.8 (Table 2's rows).

Every figure is reported as mean and standard deviation over the seeds.

Usage:
    python benchmarks/sr_reproduction.py                      # tiny config, 3 seeds x 2500 steps
    python benchmarks/sr_reproduction.py --steps 1000 --seeds 0 --json out.json --figure out.png
    python benchmarks/sr_reproduction.py --smoke              # seconds: runs every step at toy sizes

Data: ``../shared/data/sr/{T91,Set5,Set14}`` next to the repository (or ``$CNF_TEACH_SHARED_DATA/sr``);
``--smoke`` falls back to the images bundled with scikit-image when those are absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cnf_teach.data.images import SRImageDataset, SRImageFolder
from cnf_teach.data.natural import natural_sr_dataset
from cnf_teach.engine import TrainConfig, Trainer, make_loader
from cnf_teach.pretrained.recipes import shared_sr_root
from cnf_teach.super_resolution import (
    SRConfig,
    build_sr_model,
    count_parameters,
    dataset_bits_per_dim,
    evaluate_sr,
    make_upsample_fn,
    sr_checkpoint_state,
    sr_loss,
)

CNF_TEMPERATURES = (0.0, 0.5, 0.8)


def _center_crops(data: SRImageDataset, size: int, scale: int, max_images: int) -> SRImageDataset:
    """The first images cut to their central ``size`` x ``size`` HR pixels (smoke mode)."""
    crops = []
    for hr in data.hr[:max_images]:
        h, w = hr.shape[-2:]
        s = min(size, h, w) // scale * scale
        top, left = (h - s) // 2 // scale * scale, (w - s) // 2 // scale * scale
        crops.append(np.ascontiguousarray(hr[:, top : top + s, left : left + s].permute(1, 2, 0).numpy()))
    return SRImageDataset(crops, scale=scale, names=data.names[:max_images], gray=data.gray[:max_images])


def load_sets(args: argparse.Namespace, config: SRConfig) -> tuple[SRImageDataset, dict[str, SRImageDataset]]:
    root = Path(args.data_root) if args.data_root else shared_sr_root()
    have = all((root / name).is_dir() for name in ("T91", "Set5", "Set14"))
    if have:
        train = SRImageFolder(root / "T91", scale=config.scale, patch_size=config.patch, repeat=8)
        tests = {name: SRImageFolder(root / name, scale=config.scale) for name in ("Set5", "Set14")}
    elif args.smoke:
        logging.warning("%s has no T91/Set5/Set14: the smoke run uses scikit-image's bundled images", root)
        train = natural_sr_dataset("train", scale=config.scale, patch_size=config.patch, repeat=4)
        tests = {"natural": natural_sr_dataset("test", scale=config.scale)}
    else:
        sys.exit(f"error: T91, Set5 and Set14 not found under {root}; pass --data-root DIR (holding the three)")
    if args.smoke:
        name, data = next(iter(tests.items()))
        tests = {name: _center_crops(data, 48, config.scale, max_images=1)}
    return train, tests


def train(kind: str, config: SRConfig, data: SRImageDataset, args: argparse.Namespace, out: Path, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_sr_model(config, kind)
    loader = make_loader(data, config.batch_size, seed=seed)
    cfg = TrainConfig(
        steps=config.train_steps,
        lr=config.lr,
        batch_size=config.batch_size,
        grad_clip=config.grad_clip,
        lr_schedule="cosine",
        warmup_steps=min(config.warmup_steps, config.train_steps // 4),
        out_dir=str(out / f"{kind}-seed{seed}"),
        device="cpu",
        seed=seed,
        progress=not args.smoke,
        log_every=10,
    )
    trainer = Trainer(model, sr_loss, loader, cfg, task="sr", extra_state=sr_checkpoint_state(config, kind))
    cpu = time.process_time()
    metrics = trainer.fit()
    return {
        "model": model.eval(),
        "steps": trainer.step,
        "seconds": metrics["seconds"],
        "cpu_seconds": time.process_time() - cpu,
        "train_bpd": metrics["bpd"],
    }


def evaluate(tests: dict[str, SRImageDataset], cnf: torch.nn.Module, base: torch.nn.Module, seed: int, crops: int):
    """``{row: {set: {bpd, psnr_y, ssim_y}}}`` for bicubic, baseline (mode) and the CNF per tau."""
    rows: dict[str, dict[str, dict]] = {"bicubic": {}, "baseline (mode)": {}}
    rows.update({f"CNF tau={t:g}": {} for t in CNF_TEMPERATURES})
    keys = ("psnr_y", "ssim_y")
    for name, data in tests.items():
        size = min(128, *(min(hr.shape[-2:]) for hr in data.hr)) // 4 * 4
        torch.manual_seed(seed)
        bpd_cnf = dataset_bits_per_dim(cnf, data, crops=crops, crop_size=size, seed=seed)
        bpd_base = dataset_bits_per_dim(base, data, crops=crops, crop_size=size, seed=seed)
        rows["bicubic"][name] = {"bpd": None, **_pick(evaluate_sr(data, 2, None, progress=False), keys)}
        r = evaluate_sr(data, 2, make_upsample_fn(base, 0.0), progress=False)
        rows["baseline (mode)"][name] = {"bpd": bpd_base, **_pick(r, keys)}
        for t in CNF_TEMPERATURES:
            torch.manual_seed(seed)
            r = evaluate_sr(data, 2, make_upsample_fn(cnf, t), progress=False)
            rows[f"CNF tau={t:g}"][name] = {"bpd": bpd_cnf, **_pick(r, keys)}
    return rows


def aggregate(per_seed: list[dict]) -> dict:
    """Mean and standard deviation over seeds of every figure of the per-seed tables."""
    out: dict[str, dict[str, dict]] = {}
    for method, per_set in per_seed[0].items():
        out[method] = {}
        for name in per_set:
            cell = {}
            for key in ("bpd", "psnr_y", "ssim_y"):
                values = [t[method][name][key] for t in per_seed]
                if values[0] is None:
                    cell[key], cell[f"{key}_std"] = None, None
                    continue
                cell[key] = float(np.mean(values))
                cell[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            out[method][name] = cell
    return out


def _pick(d: dict, keys: tuple[str, ...]) -> dict:
    return {k: d[k] for k in keys}


def format_table(rows: dict, sets: list[str]) -> str:
    head = f"{'method':<16}" + "".join(f" | {s + ' bpd':>17} {'PSNR':>13} {'SSIM':>15}" for s in sets)
    lines = [head, "-" * len(head)]
    for method, per_set in rows.items():
        cells = []
        for s in sets:
            r = per_set[s]
            bpd = "-" if r["bpd"] is None else f"{r['bpd']:.3f} ± {r['bpd_std']:.3f}"
            cells.append(
                f" | {bpd:>17} {r['psnr_y']:>6.2f} ± {r['psnr_y_std']:.2f} {r['ssim_y']:.4f} ± {r['ssim_y_std']:.4f}"
            )
        lines.append(f"{method:<16}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="seconds-long run of every step at toy sizes")
    p.add_argument("--config", default="tiny", choices=("tiny", "small"), help="SR config (default tiny)")
    p.add_argument("--steps", type=int, default=2500, help="training steps per model and seed (default 2500)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default 0 1 2; smoke: 0)")
    p.add_argument("--crops", type=int, default=200, help="random 128x128 crops per set for bits/dim (paper: 1000)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--data-root", help="folder holding T91, Set5 and Set14")
    p.add_argument("--out", default="runs/sr_reproduction", help="checkpoint folder")
    p.add_argument("--json", metavar="OUT", help="write the table as JSON")
    p.add_argument(
        "--figure", metavar="PNG", help="save LR | bicubic | baseline | CNF taus | HR for one image (seed 0)"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)
    config = SRConfig.preset(args.config)
    seeds = args.seeds if args.seeds is not None else ([0] if args.smoke else [0, 1, 2])
    if args.smoke:
        config = dataclasses.replace(config, rrdb_blocks=1, steps=1, hidden=8, batch_size=2, patch=16, warmup_steps=0)
        config = dataclasses.replace(config, train_steps=2)
        args.crops = min(args.crops, 2)
    else:
        config = dataclasses.replace(config, train_steps=args.steps)
    n_cnf, n_base = count_parameters(config, "cnf"), count_parameters(config, "baseline")
    print(f"parameters: CNF {n_cnf:,}, baseline {n_base:,} ({100 * (n_base / n_cnf - 1):+.1f}%)")
    train_set, tests = load_sets(args, config)
    out = Path(args.out)
    start = time.perf_counter()
    per_seed, training, first = [], {"cnf": [], "baseline": []}, None
    for seed in seeds:
        runs = {kind: train(kind, config, train_set, args, out, seed) for kind in ("cnf", "baseline")}
        for kind, r in runs.items():
            print(
                f"seed {seed} {kind}: {r['steps']} steps, {r['cpu_seconds']:.0f} CPU-s, "
                f"last train bits/dim {r['train_bpd']:.3f}"
            )
            training[kind].append({k: v for k, v in r.items() if k != "model"})
        per_seed.append(evaluate(tests, runs["cnf"]["model"], runs["baseline"]["model"], seed, args.crops))
        first = first or runs
    rows = aggregate(per_seed)
    print(f"mean ± std over seeds {seeds}")
    print(format_table(rows, list(tests)))
    cnf_better = [all(t["CNF tau=0"][s]["bpd"] < t["baseline (mode)"][s]["bpd"] for s in tests) for t in per_seed]
    above_bicubic = [all(t["CNF tau=0"][s]["psnr_y"] > t["bicubic"][s]["psnr_y"] for s in tests) for t in per_seed]
    print(f"CNF bits/dim below the baseline's on every set: {sum(cnf_better)}/{len(seeds)} seeds")
    print(f"CNF (tau=0) PSNR above bicubic's on every set: {sum(above_bicubic)}/{len(seeds)} seeds")
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        result = {
            "config": config.to_dict(),
            "parameters": {"cnf": n_cnf, "baseline": n_base},
            "seeds": seeds,
            "crops": args.crops,
            "training": {
                kind: {
                    "steps": runs[0]["steps"],
                    "cpu_seconds_mean": float(np.mean([r["cpu_seconds"] for r in runs])),
                    "per_seed": runs,
                }
                for kind, runs in training.items()
            },
            "threads": args.threads,
            "table": rows,
            "per_seed": per_seed,
            "cnf_bpd_below_baseline": cnf_better,
            "cnf_psnr_above_bicubic": above_bicubic,
        }
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        from cnf_teach.super_resolution.figures import sr_comparison_figure, sr_panels

        data = next(iter(tests.values()))
        lr, hr = data[0]
        fig = sr_comparison_figure([sr_panels(lr, hr, first["cnf"]["model"], first["baseline"]["model"])])
        fig.savefig(args.figure, dpi=100)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
