"""Figures for super-resolution: Fig. 3 of Winkler et al. 2019, CNF samples beside the baseline's.

Fig. 3 of the paper (§5.1.1) shows, for one LR image (Set14's baboon), samples of the CNF at
temperatures $\\tau \\in \\{0, 0.5, 1\\}$ beside samples of the factorized baseline, which carry
"a lot of color noise": every pixel and channel is drawn on its own. :func:`sr_panels` draws
those panels for any image, in that order, framed by LR and bicubic in front and the HR truth at
the end, and adds one panel Fig. 3 does not have, titled as our addition: the baseline's *mode*
(each value's most likely level, the image Fig. 2 shows for the baseline: smooth, without the
noise). $\\tau = 0$ follows the priors' means and is deterministic; $\\tau$ near 1 trades
smoothness for detail and grain.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.1.1 and
    Fig. 3 (samples at the temperatures 0, 0.5, 1 against the baseline's samples); Fig. 2 (the
    baseline's mode) and Appendix B (samples at 0.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["BASELINE_MODE_TITLE", "FIG3_TEMPERATURES", "PAPER_TEMPERATURES", "sr_panels", "sr_comparison_figure"]

FIG3_TEMPERATURES = (0.0, 0.5, 1.0)
"""The temperatures of the CNF samples in Fig. 3 of the paper (§5.1.1)."""

PAPER_TEMPERATURES = (0.0, 0.5, 0.8, 1.0)
"""Every temperature the paper samples its SR CNF at: Fig. 3's and 0.8 (§5.1.1 for Fig. 2; Fig. 9)."""

BASELINE_MODE_TITLE = "baseline mode (ours)"
"""Title of the baseline's mode in :func:`sr_panels`: our addition to Fig. 3 (the paper's Fig. 2 shows the mode)."""


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
    temperatures: Sequence[float] = FIG3_TEMPERATURES,
    seed: int = 0,
    baseline_samples: int = 1,
) -> list[tuple[str, np.ndarray]]:
    """The panels of Fig. 3 for one image, as ``(title, H x W x 3 uint8)`` pairs.

    In order: LR and bicubic (ours), the CNF's samples at each temperature and the baseline's
    samples (the paper's Fig. 3), then the baseline's mode, titled ``"baseline mode (ours)"``,
    and the HR truth. Every sample is drawn after ``torch.manual_seed(seed)`` (the baseline's
    $k$-th after ``seed + k``), so the CNF's panels share their noise $\\epsilon$ and differ only
    in $\\tau$. Images are padded as in the paper's evaluation (zeros at the right and bottom)
    and cropped back.

    Args:
        lr: LR image, uint8 ``[3, h, w]``.
        hr: HR image, uint8 ``[3, s h, s w]``.
        cnf: A :class:`~cnf_teach.super_resolution.SuperResolutionCNF` (or ``None`` to leave it out).
        baseline: A :class:`~cnf_teach.super_resolution.SuperResolutionBaseline` (or ``None``).
        temperatures: CNF sampling temperatures, one panel each (default: Fig. 3's 0, 0.5, 1).
        seed: Seed of the samples.
        baseline_samples: Panels of baseline samples (at $\\tau = 1$: the model's own distribution).
    """
    from .evaluation import bicubic_upsample, make_upsample_fn

    if baseline_samples < 0:
        raise ValueError(f"baseline_samples must be >= 0, got {baseline_samples}")
    scale = hr.shape[-1] // lr.shape[-1]
    x = lr.unsqueeze(0)  # [1, 3, h, w]
    panels = [("LR", _hwc(lr)), ("bicubic", _hwc(bicubic_upsample(x, scale)))]
    if cnf is not None:
        for tau in temperatures:
            torch.manual_seed(seed)
            panels.append((f"CNF $\\tau={tau:g}$", _hwc(make_upsample_fn(cnf, tau)(x))))
    if baseline is not None:
        for k in range(baseline_samples):
            torch.manual_seed(seed + k)
            title = "baseline sample" if baseline_samples == 1 else f"baseline sample {k + 1}"
            panels.append((title, _hwc(make_upsample_fn(baseline, 1.0)(x))))  # [s h, s w, 3]
        panels.append((BASELINE_MODE_TITLE, _hwc(make_upsample_fn(baseline, 0.0)(x))))
    panels.append(("HR", _hwc(hr)))
    return panels


def sr_comparison_figure(rows: Sequence[Sequence[tuple[str, np.ndarray]]], panel_size: float = 2.2) -> Any:
    """A matplotlib figure with one row per image, the panels of :func:`sr_panels` side by side.

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
