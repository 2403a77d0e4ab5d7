"""Figures of the vessel task: segmentations side by side (like Fig. 4 of Winkler et al. 2019)
and precision-recall curves with the scatter of single samples (like Fig. 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .evaluation import SegEvaluation

__all__ = ["plot_pr_curves", "plot_segmentations"]


def plot_segmentations(rows: Sequence[Mapping[str, np.ndarray]], path: str | None = None):
    """A grid like Figure 4: one row per image, one column per entry (photograph, labels, maps).

    Args:
        rows: For each image, an ordered mapping title -> array (``[H, W, 3]`` photograph or ``[H, W]`` map).
        path: Save the figure there (PNG) when given.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    cols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.4 * cols, 2.4 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c, (title, arr) in enumerate(row.items()):
            ax = axes[r, c]
            ax.imshow(arr, cmap=None if arr.ndim == 3 else "gray", vmin=0, vmax=1 if arr.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig


def plot_pr_curves(results: Mapping[str, SegEvaluation], path: str | None = None):
    """Figure 5: the PR curve of every model, its single samples as points, and the second grader.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    human = None
    for i, (name, ev) in enumerate(results.items()):
        color = f"C{i}"
        ax.plot(ev.recall, ev.precision, color=color, label=f"{name} (max F {ev.max_f:.3f})")
        if ev.sample_points:
            p, r = np.array(ev.sample_points).T
            ax.scatter(r, p, s=8, color=color, alpha=0.5, marker="o")
        human = human or ev.human
    if human is not None:
        ax.scatter([human[1]], [human[0]], s=60, color="k", marker="*", label="second grader", zorder=5)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("PR curves of soft maps; dots: single samples")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
    return fig
