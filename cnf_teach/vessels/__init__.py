"""Retinal vessel segmentation (§5.2 of Winkler et al. 2019), in one place.

- :mod:`.config`: :class:`SegConfig` and its presets (tiny, the paper's DRIVE set-up);
- :mod:`.model`: the binary- and uniform-dequantized CNFs and the weighted-Bernoulli baseline;
- :mod:`.evaluation`: soft maps, PR curve, max F, bits/dim, single-sample scatter;
- :mod:`.figures`: segmentations side by side and PR curves;
- the command line, ``cnf-teach seg info|synth|train|eval|sample``, is :mod:`cnf_teach.commands.seg`.
"""

from .config import SegConfig
from .evaluation import SegEvaluation, evaluate_seg_model, real_retina
from .figures import plot_pr_curves, plot_segmentations
from .model import MODEL_KINDS, SegBaseline, SegFlow, build_seg_model, seg_loss

__all__ = [
    "MODEL_KINDS",
    "SegBaseline",
    "SegConfig",
    "SegEvaluation",
    "SegFlow",
    "build_seg_model",
    "evaluate_seg_model",
    "plot_pr_curves",
    "plot_segmentations",
    "real_retina",
    "seg_loss",
]
