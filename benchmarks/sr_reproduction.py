"""Table 1 of Winkler et al. 2019 at CPU scale: the SR CNF against its parameter-matched factorized baseline.

Trains ``SRConfig.tiny()`` as a CNF and as the factorized discretized-logistic baseline (RRDB
growth chosen so that both have the same number of parameters) on random 32x32 HR patches of
T91, each for the same wall-clock budget, then evaluates both on Set5 and Set14 (2x, whole
images): bits/dim of HR given LR, and PSNR / SSIM on Y (border 2) for bicubic, the baseline's
per-pixel mode and CNF samples at temperatures 0, 0.5 and 0.8.

The claim under test (Table 1 of the paper): the CNF models the HR images better, i.e. its
bits/dim (an upper bound for the CNF, exact for the baseline) are lower.

Usage:
    python benchmarks/sr_reproduction.py                 # 15 minutes per model, 2 threads
    python benchmarks/sr_reproduction.py --minutes 5 --json out.json --figure out.png
    python benchmarks/sr_reproduction.py --smoke         # seconds: runs every step at toy sizes

Data: ``../shared/data/sr/{T91,Set5,Set14}`` next to the repository (or ``$CNF_TEACH_SHARED_DATA/sr``);
``--smoke`` falls back to the images bundled with scikit-image when those are absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from cnf_teach.data.images import SRImageDataset, SRImageFolder
from cnf_teach.data.natural import natural_sr_dataset
from cnf_teach.engine import TrainConfig, Trainer, make_loader
from cnf_teach.super_resolution import (
    SRConfig,
    build_sr_model,
    count_parameters,
    evaluate_sr,
    make_upsample_fn,
    per_image_bits_per_dim,
    sr_checkpoint_state,
    sr_loss,
)

REPO = Path(__file__).resolve().parents[1]
CNF_TEMPERATURES = (0.0, 0.5, 0.8)


def _shared_sr() -> Path:
    root = Path(os.environ.get("CNF_TEACH_SHARED_DATA", REPO.parent / "shared" / "data"))
    return root / "sr"


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
    root = Path(args.data_root) if args.data_root else _shared_sr()
    have = all((root / name).is_dir() for name in ("T91", "Set5", "Set14"))
    if have:
        train = SRImageFolder(root / "T91", scale=config.scale, patch_size=config.patch, repeat=32)
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


def train(kind: str, config: SRConfig, data: SRImageDataset, args: argparse.Namespace, out: Path) -> dict:
    torch.manual_seed(args.seed)
    model = build_sr_model(config, kind)
    loader = make_loader(data, config.batch_size, seed=args.seed)
    cfg = TrainConfig(
        steps=config.train_steps,
        lr=config.lr,
        batch_size=config.batch_size,
        grad_clip=config.grad_clip,
        warmup_steps=config.warmup_steps,
        out_dir=str(out / kind),
        device="cpu",
        seed=args.seed,
        max_seconds=args.minutes * 60,
        progress=not args.smoke,
        log_every=10,
    )
    trainer = Trainer(model, sr_loss, loader, cfg, task="sr", extra_state=sr_checkpoint_state(config, kind))
    metrics = trainer.fit()
    return {"model": model.eval(), "steps": trainer.step, "seconds": metrics["seconds"], "train_bpd": metrics["bpd"]}


def _weighted(rows: list[tuple[float, int]]) -> float:
    return sum(b * d for b, d in rows) / sum(d for _, d in rows)


def evaluate(
    tests: dict[str, SRImageDataset], cnf: torch.nn.Module, base: torch.nn.Module, seed: int
) -> tuple[dict, dict]:
    """``{row: {set: {bpd, psnr_y, ssim_y}}}`` for bicubic, baseline (mode) and the CNF per tau,
    and per set the per-image bits/dim of both models."""
    rows: dict[str, dict[str, dict]] = {"bicubic": {}, "baseline (mode)": {}}
    rows.update({f"CNF tau={t:g}": {} for t in CNF_TEMPERATURES})
    per_image: dict[str, dict] = {}
    for name, data in tests.items():
        torch.manual_seed(seed)
        img_cnf = per_image_bits_per_dim(cnf, data)
        img_base = per_image_bits_per_dim(base, data)
        bpd_cnf, bpd_base = _weighted(img_cnf), _weighted(img_base)
        per_image[name] = {
            "names": list(getattr(data, "names", range(len(data)))),
            "cnf": [b for b, _ in img_cnf],
            "baseline": [b for b, _ in img_base],
        }
        keys = ("psnr_y", "ssim_y")
        rows["bicubic"][name] = {"bpd": None, **_pick(evaluate_sr(data, 2, None, progress=False), keys)}
        r = evaluate_sr(data, 2, make_upsample_fn(base, 0.0), progress=False)
        rows["baseline (mode)"][name] = {"bpd": bpd_base, **_pick(r, keys)}
        for t in CNF_TEMPERATURES:
            torch.manual_seed(seed)
            r = evaluate_sr(data, 2, make_upsample_fn(cnf, t), progress=False)
            rows[f"CNF tau={t:g}"][name] = {"bpd": bpd_cnf, **_pick(r, keys)}
    return rows, per_image


def _pick(d: dict, keys: tuple[str, ...]) -> dict:
    return {k: d[k] for k in keys}


def format_table(rows: dict, sets: list[str]) -> str:
    head = f"{'method':<18}" + "".join(f" | {s + ' bpd':>10} {'PSNR':>6} {'SSIM':>6}" for s in sets)
    lines = [head, "-" * len(head)]
    for method, per_set in rows.items():
        cells = []
        for s in sets:
            r = per_set[s]
            bpd = "-" if r["bpd"] is None else f"{r['bpd']:.3f}"
            cells.append(f" | {bpd:>10} {r['psnr_y']:>6.2f} {r['ssim_y']:>6.4f}")
        lines.append(f"{method:<18}" + "".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="seconds-long run of every step at toy sizes")
    p.add_argument("--minutes", type=float, default=15.0, help="training wall-clock budget per model (default 15)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--data-root", help="folder holding T91, Set5 and Set14")
    p.add_argument("--out", default="runs/sr_reproduction", help="checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="OUT", help="write the table as JSON")
    p.add_argument("--figure", metavar="PNG", help="save LR | bicubic | baseline | CNF taus | HR for one image")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)
    config = SRConfig.tiny()
    if args.smoke:
        config = dataclasses.replace(config, rrdb_blocks=1, steps=1, hidden=8, batch_size=2, patch=16, warmup_steps=0)
        args.minutes = min(args.minutes, 0.25)
        config = dataclasses.replace(config, train_steps=2)
    else:
        config = dataclasses.replace(config, train_steps=10**9)  # the time budget decides
    n_cnf, n_base = count_parameters(config, "cnf"), count_parameters(config, "baseline")
    print(f"parameters: CNF {n_cnf:,}, baseline {n_base:,} ({100 * (n_base / n_cnf - 1):+.1f}%)")
    train_set, tests = load_sets(args, config)
    out = Path(args.out)
    start = time.perf_counter()
    runs = {kind: train(kind, config, train_set, args, out) for kind in ("cnf", "baseline")}
    for kind, r in runs.items():
        print(f"{kind}: {r['steps']} steps in {r['seconds']:.0f} s, last train bits/dim {r['train_bpd']:.3f}")
    rows, per_image = evaluate(tests, runs["cnf"]["model"], runs["baseline"]["model"], args.seed)
    print(format_table(rows, list(tests)))
    for name, p_img in per_image.items():
        wins = sum(c < b for c, b in zip(p_img["cnf"], p_img["baseline"], strict=True))
        print(
            f"{name}: CNF bits/dim below the baseline's on {wins}/{len(p_img['cnf'])} images; per-image median "
            f"CNF {np.median(p_img['cnf']):.3f}, baseline {np.median(p_img['baseline']):.3f}"
        )
    cnf_better = all(rows["CNF tau=0"][s]["bpd"] < rows["baseline (mode)"][s]["bpd"] for s in tests)
    print(f"CNF bits/dim below the baseline's on every set: {'yes' if cnf_better else 'no'}")
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        result = {
            "config": config.to_dict(),
            "parameters": {"cnf": n_cnf, "baseline": n_base},
            "training": {k: {kk: v for kk, v in r.items() if kk != "model"} for k, r in runs.items()},
            "minutes_per_model": args.minutes,
            "threads": args.threads,
            "table": rows,
            "per_image_bpd": per_image,
            "cnf_bpd_below_baseline": cnf_better,
        }
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        from cnf_teach.super_resolution.figures import sr_comparison_figure, sr_panels

        data = next(iter(tests.values()))
        lr, hr = data[0]
        fig = sr_comparison_figure([sr_panels(lr, hr, runs["cnf"]["model"], runs["baseline"]["model"])])
        fig.savefig(args.figure, dpi=120)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
