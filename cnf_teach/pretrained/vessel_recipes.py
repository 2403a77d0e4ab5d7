"""The vessel recipes' data, model and fixed evaluation (see :mod:`cnf_teach.pretrained.recipes`).

All three models of Table 3 train on the same synthetic retinas (:func:`make_synthetic_drive`
with seed 0: 400 training photographs with one random annotation each, 20 test photographs with
two), each shown in a random one of its four mirror images (:class:`FlipAugment`: exact, where the
rotation / scale / shear warps of §5.2 resample the photograph and the label; see *Readings and
deviations* in the docs). The fixed evaluation scores
the first test images: bits/dim per image pixel and per field-of-view pixel, max F of the soft map,
single samples' precision, recall and F against the first grader, and the second grader's F.
Retinas of any other seed (``cnf-teach seg synth --seed``) were never seen in training.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.augment import FlipAugment
from ..data.drive import DriveDataset
from ..data.synthetic_retina import RetinaConfig, make_synthetic_drive
from ..vessels import SegConfig, build_seg_model, evaluate_seg_model, seg_loss

__all__ = [
    "DATA_SEED",
    "TRAIN_RETINAS",
    "EVAL_IMAGES",
    "EVAL_SAMPLES",
    "build_seg",
    "evaluate_seg",
    "synthetic_data",
]

#: Seed of the synthetic retinas every vessel recipe trains and is evaluated on.
DATA_SEED = 0
#: Training retinas of the recipes (one annotation each); the test split has DRIVE's 20.
TRAIN_RETINAS = 400
#: Test images and samples per image of the fixed evaluation recorded in the manifests.
EVAL_IMAGES = 8
EVAL_SAMPLES = 16
_SPEC_FILE = "recipe_data.json"


def synthetic_data(root: str | Path, mc_samples: int = 0) -> Path:
    """Write (or reuse) the recipes' synthetic DRIVE folder under ``root``.

    A folder is reused only if its record names the same seed, sizes and generator settings;
    otherwise (an older generator, a folder of another origin) it is written anew beside and
    renamed into place when complete, so an interrupted write never leaves half a folder.
    """
    root = Path(root)
    spec = {"seed": DATA_SEED, "num_train": TRAIN_RETINAS, "num_test": 20, "config": asdict(RetinaConfig())}
    spec = json.loads(json.dumps(spec))  # tuples as lists, as read back
    record = root / _SPEC_FILE
    if record.is_file() and json.loads(record.read_text()) == spec:
        return root
    tmp = root.with_name(root.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    make_synthetic_drive(tmp, num_train=TRAIN_RETINAS, num_test=20, seed=DATA_SEED, mc_samples=mc_samples)
    (tmp / _SPEC_FILE).write_text(json.dumps(spec))
    if root.exists():
        shutil.rmtree(root)  # the recipes' own work folder, written by an older generator
    tmp.rename(root)
    return root


def build_seg(recipe: Any, config: SegConfig, work_dir: str | Path = "runs/pretrained"):
    """``(model, loss_fn, train_data, extra_state, batch_size, config)`` for a vessel recipe."""
    torch.manual_seed(recipe.seed)
    model = build_seg_model(recipe.kind, config)
    root = synthetic_data(Path(work_dir) / "synthetic_drive")
    data = DriveDataset(root, "training", pad_to=config.pad_to, augment=FlipAugment())
    extra = {
        "model": recipe.kind,
        "seg_config": config.to_dict(),
        "data": f"{TRAIN_RETINAS} synthetic retinas, seed {DATA_SEED}",
        "augmentation": "random left-right and up-down mirror images (FlipAugment)",
    }
    return model, seg_loss, data, extra, config.batch_size, config


def _f(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


@torch.no_grad()
def evaluate_seg(model: nn.Module, recipe: Any, data_root: str | Path | None = None) -> dict[str, Any]:
    """Bits/dim (per image pixel and per FOV pixel), max F and the human F on the first test images."""
    root = synthetic_data(data_root if data_root is not None else Path("runs/pretrained") / "synthetic_drive")
    config: SegConfig = model.config
    test = DriveDataset(root, "test", pad_to=config.pad_to)
    subset = torch.utils.data.Subset(test, range(min(EVAL_IMAGES, len(test))))
    torch.manual_seed(recipe.seed)
    ev = evaluate_seg_model(model, subset, num_samples=EVAL_SAMPLES, scatter_per_image=2, keep_maps=0)
    summary = ev.summary()
    return {
        "mean": {
            # -log2 P(y | x) over the padded canvas, divided by the image's or the FOV's pixels
            # (the padding is certain background): see SegEvaluation.
            "bpd_image": float(ev.bpd),
            "bpd_fov": float(ev.bpd_fov),
            "max_f": float(ev.max_f),
            "sample_f": summary["sample_f_mean"],
            "sample_precision": summary["sample_precision_mean"],
            "sample_recall": summary["sample_recall_mean"],
            "human_f": _f(*ev.human) if ev.human is not None else None,
        },
        "protocol": f"first {len(subset)} synthetic test retinas (seed {DATA_SEED}); soft map = mean of "
        f"{EVAL_SAMPLES} samples; bits/dim = -log2 P(y|x) over the padded canvas / image or FOV pixels",
    }
