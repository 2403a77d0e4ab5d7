"""Table 3 of Winkler et al. 2019 at CPU scale: three vessel models on synthetic retinas, same budget.

Trains, on the same synthetic retinas (DRIVE's layout, :mod:`cnf_teach.data.synthetic_retina`,
whose annotations are random given the photograph, like two human graders') and for the same
number of steps each, with the paper's augmentation and Adam at $10^{-3}$:

- ``cnf_binary``: the CNF with binary variational dequantization (eq. (8)),
- ``cnf_uniform``: the same CNF with uniform dequantization ("CNF Uniform"),
- ``baseline``: the factored model, weighted cross-entropy, scored with eq. (9)'s normaliser,

all on the shared training engine, once per seed (``--seeds``: initialisation, data order and
augmentation change; the retinas do not), reporting mean and standard deviation over the seeds as
Table 3 does over its 5 runs. It reports on held-out synthetic test images the bits/dim (a bound
for the CNFs, exact for the baseline) per image pixel and per field-of-view pixel, next to the
two floors the annotation process allows (the entropy floor no model can beat in expectation,
and the factorized floor no factorized model can beat), the maximum F-score of the soft map
(mean of $N$ samples; the baseline's exact probabilities), the mean F-score of single samples,
and the second grader's F-score. It also applies each model
to scikit-image's *real* fundus photograph ``skimage.data.retina()`` and reports the
correlation of its soft map with Frangi's vesselness filter inside the field of view:
evidence, measured, that what was learned on synthetic retinas transfers to a real one.

The paper's Table 3 has the shape: bits/dim binary CNF < factored < uniform CNF, and the
binary CNF's max F close to the factored baseline's. This script measures whether a
small CPU run shows the same.

Usage::

    python benchmarks/seg_reproduction.py [--smoke] [--steps N] [--seeds 0 1 2] [--json OUT] [--figures DIR]

``--smoke`` (what CI runs) trains for a few steps on 32x32 images: it checks the
pipeline, not the figures. The full mode trains ``SegConfig.tiny()`` on the default 96x96
retinas (20 training, 10 test images) for ``--steps`` steps per model and seed (default 1500),
then evaluates; ``--seeds 0 1 2`` (the default) takes about 20 CPU-minutes per seed with one
thread.

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
from common import add_common_args, machine_info, print_table, resolve_device, write_json
from skimage import filters

from cnf_teach.data.augment import JointAugment
from cnf_teach.data.drive import DriveDataset
from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive, read_floors
from cnf_teach.engine import TrainConfig, Trainer, make_loader
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


def _settings(smoke: bool, steps: int) -> dict:
    if smoke:
        return {"size": 32, "train": 4, "test": 2, "batch": 2, "steps": 3, "samples": 3, "real": 32}
    return {"size": 96, "train": 20, "test": 10, "batch": 4, "steps": steps, "samples": 30, "real": 96}


def _config(smoke: bool, batch: int) -> SegConfig:
    return replace(SegConfig.tiny(), batch_size=batch)


def _train(kind: str, config: SegConfig, loader, settings: dict, device: torch.device, seed: int) -> tuple:
    torch.manual_seed(seed)
    model = build_seg_model(kind, config)
    cfg = TrainConfig(
        steps=settings["steps"],
        lr=config.lr,
        batch_size=config.batch_size,
        device=str(device),
        progress=False,
        seed=seed,
    )
    trainer = Trainer(model, seg_loss, loader, cfg, task="seg")
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return model, trainer.step, cpu, wall, trainer.history[-1].get("bpd", float("nan"))


def _real_retina_response(model, size: int, device: torch.device) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Correlation between the model's soft map and Frangi vesselness on the real photograph, inside its FOV."""
    x, fov = real_retina(size)
    green = x[0, 1].numpy()
    vesselness = filters.frangi(green, sigmas=[1, 1.5, 2], black_ridges=True)
    with torch.no_grad():
        soft = model.soft_map(x.to(device), num_samples=16)[0, 0].cpu().numpy()
    r = float(np.corrcoef(soft[fov], vesselness[fov])[0, 1])
    return r, x[0].permute(1, 2, 0).numpy(), soft * fov, vesselness * fov


#: Per-seed figures averaged in the table (mean and standard deviation over the seeds).
METRICS = ("bits_per_dim", "bits_per_fov_pixel", "max_f", "sample_f", "real_retina_r_frangi")


def _run_seed(kind, config, train_set, test_set, settings, device, seed) -> tuple[dict, object, np.ndarray]:
    loader = make_loader(train_set, config.batch_size, seed=seed)
    model, steps, cpu_s, wall_s, train_bpd = _train(kind, config, loader, settings, device, seed)
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
    ev = evaluate_seg_model(model, test_set, num_samples=settings["samples"], device=device)
    r, photo, soft, vesselness = _real_retina_response(model, settings["real"], device)
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
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model and seed (default 1500)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="model seeds (default 0 1 2; smoke: 0)")
    parser.add_argument(
        "--figures",
        type=Path,
        default=None,
        help="write PNGs like the vessel Figures 4 and 5 there (segmentations, PR curves)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    settings = _settings(args.smoke, args.steps)
    seeds = args.seeds if args.seeds is not None else ([0] if args.smoke else [0, 1, 2])
    config = _config(args.smoke, settings["batch"])
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic_drive(
            tmp,
            settings["train"],
            settings["test"],
            RetinaConfig(height=settings["size"], width=settings["size"]),
            seed=args.seed,
            mc_samples=0,
        )
        floors = read_floors(root)["mean"]
        train_set = DriveDataset(root, "training", pad_to=None, augment=JointAugment())
        test_set = DriveDataset(root, "test", pad_to=None)
        rows, per_seed, evaluations, real = [], [], {}, {}
        for kind in MODEL_KINDS:
            runs = []
            for seed in seeds:
                row, ev, maps = _run_seed(kind, config, train_set, test_set, settings, device, seed)
                runs.append(row)
                if seed == seeds[0]:
                    evaluations[kind], (photo, real[kind], vesselness) = ev, maps
            per_seed += runs
            rows.append(_aggregate(runs))
        human = evaluations[MODEL_KINDS[0]].summary()
        table = [
            {
                "model": r["model"],
                "steps": r["steps"],
                "seeds": r["seeds"],
                "bits/dim (image px)": _pm(r, "bits_per_dim", 4),
                "bits/dim (FOV px)": _pm(r, "bits_per_fov_pixel", 4),
                "max F": _pm(r, "max_f", 3),
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
            print(f"second grader against the first: F = {human['human_f']:.3f}")
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
            "floors": floors,
            "human": {k: v for k, v in human.items() if k.startswith("human")},
            "settings": {k: v for k, v in settings.items()},
            "config": config.to_dict(),
            "machine": machine_info(device),
        },
    )


if __name__ == "__main__":
    main()
