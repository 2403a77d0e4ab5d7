"""Figures for super-resolution: LR | bicubic | baseline mode | CNF samples per temperature | HR.

The comparison of Fig. 3 of Winkler et al. 2019 (CNF samples at several temperatures beside
the factorized baseline; Fig. 2 shows the baseline's mode): the factorized baseline's most likely
image is blurry (every pixel on its own picks the middle of its uncertainty), while samples
of the CNF at temperature $\\tau$ trade sharpness ($\\tau$ near 1) against noise; $\\tau = 0$
follows the priors' means and is deterministic.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1, Figs. 2 and 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["PAPER_TEMPERATURES", "sr_panels", "sr_comparison_figure"]

#: The temperatures of the paper's SR samples.
PAPER_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)


def _hwc(img: Tensor | np.ndarray) -> np.ndarray:
    """uint8 ``[3, H, W]`` / ``[1, 3, H, W]`` tensor or ``H x W x 3`` array -> ``H x W x 3`` uint8 array."""
    if isinstance(img, Tensor):
        img = img.detach().cpu()
        if img.dim() == 4:
            img = img[0]
        img = img.permute(1, 2, 0).numpy()
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ValueError(f"figures take uint8 images, got {arr.dtype}; convert with .clamp(0, 255).to(torch.uint8)")
    return arr


@torch.no_grad()
def sr_panels(
    lr: Tensor,
    hr: Tensor,
    cnf: torch.nn.Module | None = None,
    baseline: torch.nn.Module | None = None,
    temperatures: Sequence[float] = PAPER_TEMPERATURES,
    seed: int = 0,
) -> list[tuple[str, np.ndarray]]:
    """The panels of the comparison for one image, as ``(title, H x W x 3 uint8)`` pairs.

    Args:
        lr: LR image, uint8 ``[3, h, w]``.
        hr: HR image, uint8 ``[3, s h, s w]``.
        cnf: A :class:`~cnf_teach.super_resolution.SuperResolutionCNF` (or ``None`` to leave it out).
        baseline: A :class:`~cnf_teach.super_resolution.SuperResolutionBaseline` (or ``None``).
        temperatures: CNF sampling temperatures, one panel each.
        seed: Seed of the samples.
    """
    from .evaluation import bicubic_upsample, make_upsample_fn

    scale = hr.shape[-1] // lr.shape[-1]
    x = lr.unsqueeze(0)  # [1, 3, h, w]
    panels = [("LR", _hwc(lr)), ("bicubic", _hwc(bicubic_upsample(x, scale)))]
    if baseline is not None:
        panels.append(("baseline (mode)", _hwc(make_upsample_fn(baseline, 0.0)(x))))
    if cnf is not None:
        for tau in temperatures:
            torch.manual_seed(seed)
            panels.append((f"CNF $\\tau={tau:g}$", _hwc(make_upsample_fn(cnf, tau)(x))))
    panels.append(("HR", _hwc(hr)))
    return panels


def sr_comparison_figure(rows: Sequence[Sequence[tuple[str, np.ndarray]]], panel_size: float = 2.2) -> Any:
    """A matplotlib figure with one row per image: LR | bicubic | baseline | CNF per tau | HR.

    Args:
        rows: One list of panels per image (from :func:`sr_panels`).
        panel_size: Inches per panel.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    import matplotlib.pyplot as plt

    if not rows or not rows[0]:
        raise ValueError("sr_comparison_figure needs at least one row of panels (see sr_panels)")
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(panel_size * ncols, panel_size * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.axis("off")
            if j < len(row):
                title, img = row[j]
                # LR is drawn at HR size with nearest-neighbour pixels, so that the panels line up.
                ax.imshow(img, interpolation="nearest")
                if i == 0:
                    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
