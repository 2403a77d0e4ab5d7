"""Evaluation of the vessel models as in Winkler et al. 2019, §5.2: bits/dim, PR curve, max F, samples.

For every test image the model draws $N$ binary samples (100 in the paper); their mean
is the *soft map*. The soft maps of all test images, restricted to the field of view
and cropped back to the original size, give one precision-recall curve over all
thresholds and its maximum F-score (Table 3). Single samples are binary maps: each
gives one (precision, recall) point, and their scatter (Figure 5) shows how a
structured model's samples sit close to the curve while a factored model's samples,
with independent pixel noise, do not. DRIVE's second manual segmentation, scored
against the first, gives the human observer's point. A factored model's samples are
Bernoulli draws with its soft image as mean, as in §5.2. Bits/dim on the test set are the
model's $-\\log_2 P(y \\mid x)$ (a bound for the CNFs, exact for the baseline) divided by the
pixels of the original image, and, labelled as such, by those of the field of view and of the
padded canvas (:class:`SegEvaluation`).

:mod:`cnf_teach.vessels.figures` draws them like the paper's Figures 4 and 5.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2,
    Table 3, Figures 4 and 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..data.drive import crop_back
from ..metrics import max_f_score, pr_curve, precision_recall

__all__ = [
    "SegEvaluation",
    "evaluate_seg_model",
    "real_retina",
]


@dataclass
class SegEvaluation:
    """What :func:`evaluate_seg_model` measures on a test set.

    Bits/dim share one numerator, $-\\log_2 P(y \\mid x)$ of the whole map the model sees (the
    padding is part of what it models), and differ in the denominator, which the paper does not
    state (see "Readings and deviations"): ``bpd`` divides by the pixels of the original image
    (584 x 565 for DRIVE), ``bpd_fov`` by those of the field of view, ``bpd_padded`` by those of
    the padded canvas (1024 x 1024 in the paper, about a third of ``bpd`` there).

    Attributes:
        bpd: Mean bits/dim of the test labels per original-image pixel.
        max_f: Maximum F-score of the pooled soft maps inside the FOV.
        threshold: The threshold that reaches it.
        precision: PR curve, precision per threshold.
        recall: PR curve, recall per threshold.
        sample_points: ``[(precision, recall), ...]`` of single binary samples.
        human: The second grader's ``(precision, recall)`` against the first, or ``None``.
        soft_maps: Soft maps of the first few images (cropped), for figures.
        first_samples: One binary sample of each of those images.
        bpd_fov: Mean bits/dim per field-of-view pixel.
        bpd_padded: Mean bits/dim per pixel of the padded canvas the model sees.

    Examples:
        >>> import torch
        >>> from cnf_teach.vessels import SegConfig, SegFlow, evaluate_seg_model
        >>> _ = torch.manual_seed(0)
        >>> y = (torch.rand(1, 8, 8) > 0.8).float()
        >>> item = {"x": torch.rand(3, 8, 8), "y": y, "mask": torch.ones(1, 8, 8), "box": (0, 0, 8, 8)}
        >>> result = evaluate_seg_model(SegFlow(SegConfig.tiny()), [item], num_samples=4, scatter_per_image=2)
        >>> len(result.sample_points), result.soft_maps[0].shape, 0.0 <= result.max_f <= 1.0
        (2, (8, 8), True)
        >>> sorted(result.summary())  # doctest: +NORMALIZE_WHITESPACE
        ['bpd', 'bpd_fov', 'bpd_padded', 'max_f', 'sample_f_mean', 'sample_precision_mean',
         'sample_recall_mean', 'threshold']
    """

    bpd: float
    max_f: float
    threshold: float
    precision: np.ndarray
    recall: np.ndarray
    sample_points: list[tuple[float, float]] = field(default_factory=list)
    human: tuple[float, float] | None = None
    soft_maps: list[np.ndarray] = field(default_factory=list)
    first_samples: list[np.ndarray] = field(default_factory=list)
    bpd_fov: float = float("nan")
    bpd_padded: float = float("nan")

    def summary(self) -> dict[str, Any]:
        """The scalar results as a JSON-friendly dict."""
        out: dict[str, Any] = {
            "bpd": self.bpd,
            "bpd_fov": self.bpd_fov,
            "bpd_padded": self.bpd_padded,
            "max_f": self.max_f,
            "threshold": self.threshold,
        }
        if self.sample_points:
            p, r = np.array(self.sample_points).T
            f = 2 * p * r / np.maximum(p + r, 1e-12)
            out["sample_f_mean"] = float(f.mean())
            out["sample_precision_mean"], out["sample_recall_mean"] = float(p.mean()), float(r.mean())
        if self.human is not None:
            p, r = self.human
            out["human_precision"], out["human_recall"] = p, r
            out["human_f"] = 2 * p * r / max(p + r, 1e-12)
        return out


@torch.no_grad()
def evaluate_seg_model(
    model: nn.Module,
    dataset: Dataset,
    num_samples: int = 100,
    bound_samples: int = 1,
    scatter_per_image: int = 5,
    keep_maps: int = 2,
    device: torch.device | str = "cpu",
) -> SegEvaluation:
    """Bits/dim, PR curve, max F-score and single-sample points of a vessel model on a test set.

    Args:
        model: :class:`~cnf_teach.vessels.SegFlow` or :class:`~cnf_teach.vessels.SegBaseline`
            (anything with ``bits_per_dim``, ``samples`` and ``soft_map``).
        dataset: Items ``{"x", "y", "mask", "box"[, "y2"]}`` (e.g. a
            :class:`~cnf_teach.data.drive.DriveDataset` without augmentation).
        num_samples: $N$, samples per image averaged into the soft map.
        bound_samples: Importance samples of the dequantization bound (CNFs).
        scatter_per_image: Single samples per image kept as (precision, recall) points.
        keep_maps: Soft maps and samples of this many images are returned for figures.
        device: Where to run the model.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if len(dataset) == 0:
        raise ValueError("the test set is empty")
    model.eval()
    device = torch.device(device)
    bpds, bpds_fov, bpds_padded, scores, labels, points = [], [], [], [], [], []
    human_pred, human_true = [], []
    kept_soft, kept_samples = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        x = item["x"][None].to(device)  # [1, C, H, W]
        y = item["y"][None].to(device)  # [1, 1, H, W]
        box = tuple(int(v) for v in item["box"])
        mask = crop_back(item["mask"][0], box).numpy() > 0.5  # [h, w]
        truth = crop_back(item["y"][0], box).numpy()
        per_canvas = float(model.bits_per_dim(y, x, bound_samples).mean())  # bits / padded pixels
        total_bits = per_canvas * y[0, 0].numel()
        bpds_padded.append(per_canvas)
        bpds.append(total_bits / truth.size)  # per original-image pixel
        bpds_fov.append(total_bits / max(int(mask.sum()), 1))
        total = np.zeros_like(truth, dtype=np.float64)
        first = None
        # A factored model's expectation is its probability map, exactly: draw only the scatter's samples.
        factored = not hasattr(model, "flow")
        draws = max(1, scatter_per_image) if factored else num_samples
        for s, sample in enumerate(model.samples(x, draws)):
            binary = crop_back(sample[0, 0].cpu(), box).numpy()
            total += binary
            if s < scatter_per_image:
                points.append(precision_recall(binary, truth, mask))
            if first is None:
                first = binary
        soft = total / draws
        if factored:
            soft = crop_back(model.soft_map(x)[0, 0].cpu(), box).numpy().astype(np.float64)
        scores.append(soft[mask])
        labels.append(truth[mask])
        if "y2" in item:
            human_pred.append(crop_back(item["y2"][0], box).numpy()[mask])
            human_true.append(truth[mask])
        if i < keep_maps:
            kept_soft.append(soft)
            kept_samples.append(first)
    all_scores, all_labels = np.concatenate(scores), np.concatenate(labels)
    precision, recall, _ = pr_curve(all_scores, all_labels)
    f, thr = max_f_score(all_scores, all_labels)
    human = None
    if human_pred:
        human = precision_recall(np.concatenate(human_pred), np.concatenate(human_true))
    return SegEvaluation(
        bpd=float(np.mean(bpds)),
        bpd_fov=float(np.mean(bpds_fov)),
        bpd_padded=float(np.mean(bpds_padded)),
        max_f=f,
        threshold=thr,
        precision=precision,
        recall=recall,
        sample_points=points,
        human=human,
        soft_maps=kept_soft,
        first_samples=kept_samples,
    )


def real_retina(size: int = 128) -> tuple[torch.Tensor, np.ndarray]:
    """scikit-image's real fundus photograph, resized: ``x [1, 3, size, size]`` in [0, 1] and its FOV mask.

    The FOV is where the photograph is brighter than its dark surround, eroded by two
    pixels so that the rim of the disc does not count as a vessel edge.
    """
    from scipy import ndimage
    from skimage import data, transform

    if size % 4:
        raise ValueError(f"size must be divisible by 4 (two levels of squeeze), got {size}")
    img = transform.resize(data.retina(), (size, size), anti_aliasing=True).astype(np.float32)
    fov = ndimage.binary_erosion(img.mean(axis=2) > 0.08, iterations=2)
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous(), fov
