"""Table 3 of Winkler et al. 2019 at CPU scale: the shipped vessel recipes trained under several seeds.

Trains the three models of Table 3 exactly as their recipes in :mod:`cnf_teach.pretrained` do
(``SegConfig.small()``, the recipes' 400 synthetic training retinas of seed 0 with one
annotation each, the paper's augmentation, batch 4, Adam $10^{-3}$ with a cosine schedule, one
thread), except for the number of steps (``--steps``) and the seed (``--seeds``: initialisation,
data order, augmentation and dequantization noise change; the retinas do not):

- ``cnf_binary``: the CNF with binary variational dequantization (eq. (8)),
- ``cnf_uniform``: the same CNF with uniform dequantization ("CNF Uniform"),
- ``baseline``: the same flow run feed-forward, weighted cross-entropy, scored with eq. (9)'s normaliser,

and reports mean and standard deviation over the seeds, as Table 3 does over its 5 runs, on the
20 test retinas of a seed the recipes never train on (``--test-seed``, default 11): the bits/dim
(a bound for the CNFs with one dequantization sample, eq. (5); exact for the baseline) per image
pixel and per field-of-view pixel, next to the two floors the annotation process allows (the
entropy floor no model can beat in expectation, and the factorized floor no factorized model can
beat); the maximum F-score of the soft map (mean of 16 samples; pooled over the test images' FOV
pixels); single samples' mean precision, recall and F against the first grader; and the second
grader's scores. It also applies each model to scikit-image's *real* fundus photograph
``skimage.data.retina()`` and reports the correlation of its soft map with Frangi's vesselness
filter inside the field of view: evidence that what was learned on synthetic retinas transfers.

Usage::

    python benchmarks/seg_reproduction.py [--smoke] [--steps N] [--seeds 0 1 2] [--models M,...]
        [--work-dir DIR] [--json OUT] [--figures DIR]

``--smoke`` (what CI runs) trains ``SegConfig.tiny()`` for a few steps on a few 32x32 retinas:
it checks the pipeline, not the figures. The full mode writes the recipes' training retinas under
``--work-dir`` (default ``runs/pretrained``: the folder ``make pretrained`` uses, so they are
reused) and takes, per seed and with one thread, about 0.37 CPU-seconds a step for the binary CNF
and 0.26 for the other two: ``--steps 2000`` (the default) about 12, 9 and 9 CPU-minutes.
``--models`` runs a subset (one process per model runs them side by side).

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2,
    Table 3, Figures 4 and 5.
    Frangi, Niessen, Vincken, Viergever. Multiscale vessel enhancement filtering. MICCAI 1998.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import add_common_args, chosen_models, machine_info, print_table, resolve_device, write_json
from skimage import filters

from cnf_teach.data.augment import FlipAugment
from cnf_teach.data.drive import DriveDataset
from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive, read_floors
from cnf_teach.engine import Trainer, make_loader
from cnf_teach.pretrained.recipes import Recipe, train_config
from cnf_teach.pretrained.vessel_recipes import build_seg
from cnf_teach.vessels import (
    MODEL_KINDS,
    SegConfig,
    build_seg_model,
    evaluate_seg_model,
    plot_pr_curves,
    plot_segmentations,
    real_retina,
    seg_loss,
)

log = logging.getLogger("seg_reproduction")

#: Samples per soft map and single samples per image scored, as ``cnf-teach seg eval --samples 16``.
SAMPLES = 16
SCATTER = 5


def _smoke_data(tmp: Path) -> tuple[DriveDataset, Path]:
    """A few 32x32 retinas (training split augmented) for the pipeline check."""
    root = make_synthetic_drive(tmp / "smoke", 4, 2, RetinaConfig(height=32, width=32), seed=0, mc_samples=0)
    return DriveDataset(root, "training", pad_to=None, augment=FlipAugment()), root


def _train(kind: str, seed: int, steps: int, smoke: bool, work_dir: Path, smoke_train) -> tuple:
    """Train one model as its recipe does, under ``seed`` and for ``steps``: (model, CPU s, wall s, train bpd)."""
    recipe = Recipe(f"seg-{kind}-seed{seed}", "seg", kind, steps, seed=seed)
    if smoke:
        config = replace(SegConfig.tiny(), batch_size=2)
        torch.manual_seed(seed)
        model, data, batch = build_seg_model(kind, config), smoke_train, config.batch_size
    else:
        config = SegConfig.small()  # the recipes' config
        model, _, data, _, batch, config = build_seg(recipe, config, work_dir)
    loader = make_loader(data, batch, seed=seed)
    trainer = Trainer(model, seg_loss, loader, train_config(recipe, config, batch), task="seg")
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return trainer.model, cpu, wall, trainer.history[-1].get("bpd", float("nan"))


def _real_retina_response(model, size: int, device: torch.device) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Correlation between the model's soft map and Frangi vesselness on the real photograph, inside its FOV."""
    x, fov = real_retina(size)
    green = x[0, 1].numpy()
    vesselness = filters.frangi(green, sigmas=[1, 1.5, 2], black_ridges=True)
    with torch.no_grad():
        soft = model.soft_map(x.to(device), num_samples=SAMPLES)[0, 0].cpu().numpy()
    r = float(np.corrcoef(soft[fov], vesselness[fov])[0, 1])
    return r, x[0].permute(1, 2, 0).numpy(), soft * fov, vesselness * fov


#: Per-seed figures averaged in the table (mean and standard deviation over the seeds).
METRICS = (
    "bits_per_dim",
    "bits_per_fov_pixel",
    "max_f",
    "sample_precision",
    "sample_recall",
    "sample_f",
    "real_retina_r_frangi",
)


def _run_seed(kind, seed, steps, smoke, work_dir, smoke_train, test_set, device) -> tuple[dict, object, tuple]:
    model, cpu_s, wall_s, train_bpd = _train(kind, seed, steps, smoke, work_dir, smoke_train)
    model.to(device)
    log.info(
        "%s seed %d: %d steps, %.0f CPU s, %.0f s wall (train bits/dim %.4f)",
        kind,
        seed,
        steps,
        cpu_s,
        wall_s,
        train_bpd,
    )
    torch.manual_seed(seed + 1)
    ev = evaluate_seg_model(model, test_set, num_samples=SAMPLES, scatter_per_image=SCATTER, device=device)
    r, photo, soft, vesselness = _real_retina_response(model, 32 if smoke else 96, device)
    s = ev.summary()
    row = {
        "model": kind,
        "seed": seed,
        "steps": steps,
        "train_cpu_s": cpu_s,
        "train_wall_s": wall_s,
        "params": sum(p.numel() for p in model.parameters()),
        "bits_per_dim": s["bpd"],
        "bits_per_fov_pixel": s["bpd_fov"],
        "max_f": s["max_f"],
        "sample_precision": s["sample_precision_mean"],
        "sample_recall": s["sample_recall_mean"],
        "sample_f": s["sample_f_mean"],
        "real_retina_r_frangi": r,
    }
    return row, ev, (photo, soft, vesselness)


def _aggregate(per_seed: list[dict]) -> dict:
    out = {k: per_seed[0][k] for k in ("model", "steps", "params")}
    out["seeds"] = len(per_seed)
    out["train_cpu_s"] = float(np.mean([r["train_cpu_s"] for r in per_seed]))
    for key in METRICS:
        values = np.array([r[key] for r in per_seed], dtype=float)
        out[key] = float(values.mean())
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def _pm(row: dict, key: str, digits: int) -> str:
    return f"{row[key]:.{digits}f} ± {row[key + '_std']:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--steps", type=int, default=2000, help="training steps per model and seed (default 2000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="model seeds (default 0 1 2; smoke: 0)")
    parser.add_argument("--models", default=",".join(MODEL_KINDS), help="comma-separated subset of the three")
    parser.add_argument("--test-seed", type=int, default=11, help="seed of the 20 test retinas (default 11)")
    parser.add_argument(
        "--work-dir", type=Path, default=Path("runs/pretrained"), help="where the recipes' training retinas live"
    )
    parser.add_argument(
        "--figures",
        type=Path,
        default=None,
        help="write PNGs like the vessel Figures 4 and 5 there (segmentations, PR curves)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads or 1)  # the recipes' one thread unless told otherwise
    device = resolve_device(args.device)
    seeds = args.seeds if args.seeds is not None else ([0] if args.smoke else [0, 1, 2])
    steps = 3 if args.smoke else args.steps
    kinds = chosen_models(args.models, MODEL_KINDS)
    with tempfile.TemporaryDirectory() as tmp:
        smoke_train, smoke_root = _smoke_data(Path(tmp)) if args.smoke else (None, None)
        test_root = smoke_root or make_synthetic_drive(Path(tmp) / "test", 0, 20, seed=args.test_seed, mc_samples=0)
        floors = read_floors(test_root)["mean"]
        test_set = DriveDataset(test_root, "test", pad_to=None)
        rows, per_seed, evaluations, real = [], [], {}, {}
        for kind in kinds:
            runs = []
            for seed in seeds:
                row, ev, maps = _run_seed(kind, seed, steps, args.smoke, args.work_dir, smoke_train, test_set, device)
                runs.append(row)
                if seed == seeds[0]:
                    evaluations[kind], (photo, real[kind], vesselness) = ev, maps
            per_seed += runs
            rows.append(_aggregate(runs))
        human = evaluations[kinds[0]].summary()
        table = [
            {
                "model": r["model"],
                "steps": r["steps"],
                "seeds": r["seeds"],
                "bits/dim (image px)": _pm(r, "bits_per_dim", 4),
                "bits/dim (FOV px)": _pm(r, "bits_per_fov_pixel", 4),
                "max F": _pm(r, "max_f", 3),
                "sample P": _pm(r, "sample_precision", 3),
                "sample R": _pm(r, "sample_recall", 3),
                "sample F": _pm(r, "sample_f", 3),
                "r Frangi (real)": _pm(r, "real_retina_r_frangi", 3),
            }
            for r in rows
        ]
        print_table(table, list(table[0]), "Vessel models on synthetic retinas (Table 3 at CPU scale, mean ± std)")
        print(
            f"\nfloors of the annotation process (bits/dim, image px / FOV px): entropy "
            f"{floors['entropy_per_pixel']:.4f} / {floors['entropy_per_fov_pixel']:.4f}, factorized "
            f"{floors['factorized_per_pixel']:.4f} / {floors['factorized_per_fov_pixel']:.4f}"
        )
        if "human_f" in human:
            print(
                f"second grader against the first: P / R / F = {human['human_precision']:.3f} / "
                f"{human['human_recall']:.3f} / {human['human_f']:.3f}"
            )
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            plot_pr_curves(evaluations, str(args.figures / "seg_pr_curves.png"))
            grid = []
            for i in range(min(2, len(test_set))):
                row = {"photograph": test_set.images[i].image, "ground truth": test_set.images[i].label}
                for kind, ev in evaluations.items():
                    row[f"{kind} soft"] = ev.soft_maps[i]
                    row[f"{kind} sample"] = ev.first_samples[i]
                grid.append(row)
            plot_segmentations(grid, str(args.figures / "seg_samples.png"))
            real_row = {"skimage.data.retina()": photo, "Frangi vesselness": vesselness / max(vesselness.max(), 1e-12)}
            real_row.update({f"{k} soft map": v for k, v in real.items()})
            plot_segmentations([real_row], str(args.figures / "seg_real_retina.png"))
    write_json(
        args.json,
        {
            "rows": rows,
            "per_seed": per_seed,
            "seeds": seeds,
            "test_seed": args.test_seed,
            "floors": floors,
            "human": {k: v for k, v in human.items() if k.startswith("human")},
            "steps": steps,
            "samples": SAMPLES,
            "machine": machine_info(device),
        },
    )


if __name__ == "__main__":
    main()
