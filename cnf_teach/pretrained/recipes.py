"""How each shipped model is trained: one recipe per model, reproduced by ``make pretrained``.

A recipe fixes the task, the model kind, the config, the seed, the number of steps and the
training data; :func:`train` runs it with the package's engine (checkpoints every few hundred
steps, so an interrupted run resumes where it stopped), then writes the float16 weights and a
manifest with the training curve, the wall and CPU time, and :func:`evaluate`'s metrics
measured on the float16 weights as shipped. A test reloads every shipped model and checks
that :func:`evaluate` gives its manifest's figures again.

- ``sr-cnf-small`` / ``sr-baseline-small``: :meth:`SRConfig.small` as the CNF and as its
  parameter-matched discretized-logistic baseline, on random 32x32 HR patches of T91 and of five
  colour photographs bundled with scikit-image (:data:`~cnf_teach.data.natural.NATURAL_TRAIN`);
  the bundled test photographs (chelsea, camera, coins) are held out for notebook 06.
- ``seg-cnf-binary`` / ``seg-cnf-uniform`` / ``seg-baseline``: the three models of Table 3
  (:meth:`SegConfig.small`: the paper's flow, and the baseline as that flow run feed-forward) on
  400 synthetic retinas with random, grader-like annotations.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, Tables 1-3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.images import SRImageFolder
from ..data.imresize import imresize
from ..data.natural import NATURAL_TEST, natural_image, natural_sr_dataset
from ..engine import TrainConfig, Trainer, make_loader, save_weights
from ..engine.checkpoint import CHECKPOINT_NAME
from ..metrics import sr_metrics
from ..super_resolution import SRConfig, build_sr_model, sr_checkpoint_state, sr_loss
from . import WEIGHTS, load

__all__ = ["RECIPES", "Recipe", "evaluate", "shared_sr_root", "train", "train_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """One shipped model: what to build, on what, for how long.

    Attributes:
        name: File stem of the weights and manifest.
        task: ``"sr"`` or ``"seg"``.
        kind: The model kind (``"cnf"``/``"baseline"`` for SR; ``"cnf_binary"``, ``"cnf_uniform"``,
            ``"baseline"`` for vessels).
        steps: Optimisation steps.
        seed: Seed of the initialisation, the data order and the dequantization noise.
        description: One line for the manifest.

    Examples:
        >>> from cnf_teach.pretrained.recipes import RECIPES, Recipe
        >>> sorted(RECIPES)
        ['seg-baseline', 'seg-cnf-binary', 'seg-cnf-uniform', 'sr-baseline-small', 'sr-cnf-small']
        >>> recipe = RECIPES["sr-cnf-small"]
        >>> recipe.task, recipe.kind, recipe.steps, recipe.config().name
        ('sr', 'cnf', 9000, 'small')
        >>> Recipe("seg-short", "seg", "baseline", steps=100).config().vgg_widths  # SegConfig.small()
        (32, 64, 128)
    """

    name: str
    task: str
    kind: str
    steps: int
    seed: int = 0
    description: str = ""

    def config(self) -> Any:
        """The model's config (a dataclass)."""
        if self.task == "sr":
            return SRConfig.small()
        from ..vessels import SegConfig

        return SegConfig.small()


#: Steps of every vessel recipe (batch 4 of 96x96 synthetic retinas: 80 passes over the 400 training retinas).
SEG_STEPS = 8000

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("sr-cnf-small", "sr", "cnf", 9000, description="SR CNF (SRConfig.small) on T91 + bundled photographs"),
        Recipe(
            "sr-baseline-small",
            "sr",
            "baseline",
            9000,
            description="parameter-matched discretized-logistic baseline (SRConfig.small)",
        ),
        Recipe(
            "seg-cnf-binary", "seg", "cnf_binary", SEG_STEPS, description="vessel CNF, binary dequantization (eq. 8)"
        ),
        Recipe("seg-cnf-uniform", "seg", "cnf_uniform", SEG_STEPS, description="vessel CNF, uniform dequantization"),
        Recipe("seg-baseline", "seg", "baseline", SEG_STEPS, description="weighted-Bernoulli baseline (eq. 9)"),
    )
}


def shared_sr_root() -> Path:
    """Where T91, Set5 and Set14 live: ``$CNF_TEACH_SHARED_DATA/sr``, else ``../shared/data/sr`` beside the repo."""
    env = os.environ.get("CNF_TEACH_SHARED_DATA")
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return root / "sr"


# --- data ------------------------------------------------------------------------------------------
def _sr_train_data(config: SRConfig, data_root: Path | None) -> torch.utils.data.Dataset:
    root = data_root if data_root is not None else shared_sr_root()
    if not (root / "T91").is_dir():
        raise ValueError(f"T91 not found in {root}; pass --data-root DIR holding T91/ (or set CNF_TEACH_SHARED_DATA)")
    t91 = SRImageFolder(root / "T91", scale=config.scale, patch_size=config.patch, repeat=8)
    photos = natural_sr_dataset("train", scale=config.scale, patch_size=config.patch, repeat=40)
    return torch.utils.data.ConcatDataset([t91, photos])


# --- evaluation ------------------------------------------------------------------------------------
def _sr_eval_pairs(size: int = 128, scale: int = 2) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """Centre crops (HR ``size`` x ``size``) of the held-out bundled photographs and their bicubic LR."""
    out = []
    for name in NATURAL_TEST:
        img, _ = natural_image(name)
        h, w = img.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        hr = torch.from_numpy(np.ascontiguousarray(img[top : top + size, left : left + size])).permute(2, 0, 1)
        hr = hr.unsqueeze(0).contiguous()  # [1, 3, size, size] uint8
        lr = imresize(hr, scale=1.0 / scale)  # [1, 3, size/s, size/s] uint8, MATLAB bicubic
        out.append((name, lr, hr))
    return out


@torch.no_grad()
def _evaluate_sr(model: nn.Module, seed: int = 0) -> dict[str, Any]:
    torch.manual_seed(seed)
    rows = {}
    for name, lr, hr in _sr_eval_pairs():
        bpd = float(model.bits_per_dim(hr, lr).item())
        pred = model.predict(lr, 0.0)
        bicubic = imresize(lr, scale=2.0)
        rows[name] = {
            "bpd": bpd,
            "psnr_y": sr_metrics(pred, hr, border=2, metrics=("psnr_y",))["psnr_y"],
            "psnr_y_bicubic": sr_metrics(bicubic, hr, border=2, metrics=("psnr_y",))["psnr_y"],
        }
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in ("bpd", "psnr_y", "psnr_y_bicubic")}
    return {"per_image": rows, "mean": mean, "protocol": "centre 128x128 crops of chelsea, camera, coins; tau=0"}


def evaluate(name: str, model: nn.Module, work_dir: str | Path = "runs/pretrained") -> dict[str, Any]:
    """The fixed evaluation recorded in a manifest (seeded, so it repeats on the same weights).

    Vessel models are scored on synthetic retinas written (once) under ``work_dir``.
    """
    recipe = RECIPES[name]
    if recipe.task == "sr":
        return _evaluate_sr(model, recipe.seed)
    from .vessel_recipes import evaluate_seg

    return evaluate_seg(model, recipe, Path(work_dir) / "synthetic_drive")


# --- training --------------------------------------------------------------------------------------
def _build(recipe: Recipe, work_dir: Path) -> tuple[nn.Module, Callable, torch.utils.data.Dataset, Any, int, Any]:
    config = recipe.config()
    if recipe.task == "sr":
        torch.manual_seed(recipe.seed)
        model = build_sr_model(config, recipe.kind)
        return model, sr_loss, None, sr_checkpoint_state(config, recipe.kind), config.batch_size, config
    from .vessel_recipes import build_seg

    return build_seg(recipe, config, work_dir)


def _fp16_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).clone() for k, v in model.state_dict().items()}


def train_config(
    recipe: Recipe, config: Any, batch_size: int, out_dir: str | Path | None = None, progress: bool = False
) -> TrainConfig:
    """The engine's settings of a recipe: Adam at the config's rate, cosine schedule, clipping, CPU, its seed.

    Shared with ``benchmarks/seg_reproduction.py``, which trains the vessel recipes under other seeds.
    """
    return TrainConfig(
        steps=recipe.steps,
        lr=config.lr,
        batch_size=batch_size,
        grad_clip=getattr(config, "grad_clip", 1.0),
        lr_schedule="cosine",
        warmup_steps=getattr(config, "warmup_steps", 0),
        out_dir=str(out_dir) if out_dir is not None else None,
        device="cpu",
        seed=recipe.seed,
        log_every=50,
        progress=progress,
    )


def train(
    name: str,
    out: str | Path | None = None,
    work_dir: str | Path = "runs/pretrained",
    data_root: str | Path | None = None,
    chunk: int = 250,
    progress: bool = True,
) -> dict[str, Any]:
    """Train recipe ``name`` (resuming from ``work_dir/NAME/last.pt`` if present); write weights and manifest.

    Args:
        name: A key of :data:`RECIPES`.
        out: Folder for ``NAME.pt`` and ``NAME.json`` (default: the package's weights folder).
        work_dir: Folder for the resumable training checkpoint and the time ledger.
        data_root: Folder holding T91 (SR recipes); default :func:`shared_sr_root`.
        chunk: Steps between checkpoints (and entries of the time ledger).
        progress: Show progress.

    Returns:
        The manifest.
    """
    if name not in RECIPES:
        raise ValueError(f"unknown pretrained recipe {name!r}; choose from {', '.join(RECIPES)}")
    recipe = RECIPES[name]
    out = Path(out) if out is not None else WEIGHTS
    run = Path(work_dir) / name
    run.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # the recorded CPU time is one core's; results repeat bit for bit
    model, loss_fn, data, extra, batch_size, config = _build(recipe, Path(work_dir))
    if data is None:
        data = _sr_train_data(config, Path(data_root) if data_root else None)
    loader = make_loader(data, batch_size, seed=recipe.seed)
    tcfg = train_config(recipe, config, batch_size, out_dir=run, progress=progress)
    ledger_path = run / "ledger.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.is_file() else {"wall_s": 0.0, "cpu_s": 0.0}
    if (run / CHECKPOINT_NAME).is_file():
        trainer = Trainer.resume(
            run / CHECKPOINT_NAME, model, loss_fn, loader, tcfg, task=recipe.task, extra_state=extra
        )
        log.info("%s: resuming at step %d", name, trainer.step)
        curve = ledger.get("curve", [])
    else:
        trainer = Trainer(model, loss_fn, loader, tcfg, task=recipe.task, extra_state=extra)
        curve = []
    while trainer.step < recipe.steps:
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.fit(until=trainer.step + chunk)
        curve += [[int(h["step"]), float(h.get("bpd", h.get("loss")))] for h in trainer.history]
        trainer.history.clear()
        ledger["wall_s"] += time.perf_counter() - wall
        ledger["cpu_s"] += time.process_time() - cpu
        ledger["curve"] = curve
        ledger_path.write_text(json.dumps(ledger))
    # Ship float16; the metrics are measured on exactly what ships.
    out.mkdir(parents=True, exist_ok=True)
    weights = out / f"{name}.pt"
    save_weights(
        weights, recipe.task, _fp16_state(trainer.model), extra=extra, meta={"recipe": name, "steps": trainer.step}
    )
    meta: dict[str, Any] = {
        "name": name,
        "task": recipe.task,
        "kind": recipe.kind,
        "description": recipe.description,
        "config": config.to_dict(),
        "seed": recipe.seed,
        "steps": trainer.step,
        "batch_size": batch_size,
        "lr_schedule": "cosine",
        "wall_seconds": round(ledger["wall_s"], 1),
        "cpu_seconds": round(ledger["cpu_s"], 1),
        "threads": 1,
        "curve": curve,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "dtype": "float16",
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "command": f"make pretrained MODEL={name}",
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    meta["metrics"] = evaluate(name, load(name, folder=out), work_dir)
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    return meta
