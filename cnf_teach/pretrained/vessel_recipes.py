"""The vessel recipes' data, model and fixed evaluation (see :mod:`cnf_teach.pretrained.recipes`).

All three models of Table 3 train on the same synthetic retinas (:func:`make_synthetic_drive`
with seed 0: 20 training photographs with one random annotation each, 20 test photographs with
two), with the joint rotation / scale / shear augmentation of §5.2. The fixed evaluation scores
the first test images: bits/dim per image pixel and per field-of-view pixel, max F of the soft map,
and the second grader's F against the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.augment import JointAugment
from ..data.drive import DriveDataset
from ..data.synthetic_retina import make_synthetic_drive
from ..vessels import SegConfig, build_seg_model, evaluate_seg_model, seg_loss

__all__ = ["DATA_SEED", "EVAL_IMAGES", "EVAL_SAMPLES", "build_seg", "evaluate_seg", "synthetic_data"]

#: Seed of the synthetic retinas every vessel recipe trains and is evaluated on.
DATA_SEED = 0
#: Test images and samples per image of the fixed evaluation recorded in the manifests.
EVAL_IMAGES = 8
EVAL_SAMPLES = 16


def synthetic_data(root: str | Path, mc_samples: int = 0) -> Path:
    """Write (or reuse) the recipes' synthetic DRIVE folder under ``root``."""
    root = Path(root)
    if not (root / "training").is_dir() or not (root / "test").is_dir():
        make_synthetic_drive(root, seed=DATA_SEED, mc_samples=mc_samples)
    return root


def build_seg(recipe: Any, config: SegConfig, work_dir: str | Path = "runs/pretrained"):
    """``(model, loss_fn, train_data, extra_state, batch_size, config)`` for a vessel recipe."""
    torch.manual_seed(recipe.seed)
    model = build_seg_model(recipe.kind, config)
    root = synthetic_data(Path(work_dir) / "synthetic_drive")
    data = DriveDataset(root, "training", pad_to=config.pad_to, augment=JointAugment())
    extra = {"model": recipe.kind, "seg_config": config.to_dict(), "data": "synthetic retinas, seed 0"}
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
    return {
        "mean": {
            # -log2 P(y | x) over the padded canvas, divided by the image's or the FOV's pixels
            # (the padding is certain background): see SegEvaluation.
            "bpd_image": float(ev.bpd),
            "bpd_fov": float(ev.bpd_fov),
            "max_f": float(ev.max_f),
            "human_f": _f(*ev.human) if ev.human is not None else None,
        },
        "protocol": f"first {len(subset)} synthetic test retinas (seed {DATA_SEED}); soft map = mean of "
        f"{EVAL_SAMPLES} samples; bits/dim = -log2 P(y|x) over the padded canvas / image or FOV pixels",
    }
