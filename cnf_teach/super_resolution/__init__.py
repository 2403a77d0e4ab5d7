"""Super-resolution as likelihood learning (§5.1 of Winkler et al. 2019), in one place.

- :mod:`.config`: :class:`SRConfig` and its presets (tiny, the paper's ImageNet32/64);
- :mod:`.model`: the SR CNF and its parameter-matched discretized-logistic baseline;
- :mod:`.evaluation`: the bicubic row, PSNR/SSIM on Y, bits/dim over a test set (the paper's
  random crops or whole images), the paper's test-time zero padding to a square;
- :mod:`.figures`: LR, bicubic, baseline and CNF samples side by side;
- :mod:`.checkpoint`: rebuilding a model from a training checkpoint;
- the command line, ``cnf-teach sr train|eval|sample``, is :mod:`cnf_teach.commands.sr`.
"""

from .checkpoint import model_from_checkpoint, sr_checkpoint_state
from .config import SR_PRESETS, SRConfig
from .evaluation import (
    bicubic_upsample,
    dataset_bits_per_dim,
    dataset_bits_totals,
    evaluate_sr,
    make_upsample_fn,
    pad_to_square,
    per_image_bits_per_dim,
    random_crop_bits_per_dim,
)
from .model import SuperResolutionBaseline, SuperResolutionCNF, build_sr_model, count_parameters, sr_loss

__all__ = [
    "SR_PRESETS",
    "SRConfig",
    "SuperResolutionBaseline",
    "SuperResolutionCNF",
    "bicubic_upsample",
    "build_sr_model",
    "count_parameters",
    "dataset_bits_per_dim",
    "dataset_bits_totals",
    "evaluate_sr",
    "make_upsample_fn",
    "model_from_checkpoint",
    "pad_to_square",
    "per_image_bits_per_dim",
    "random_crop_bits_per_dim",
    "sr_checkpoint_state",
    "sr_loss",
]
