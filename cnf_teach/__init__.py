"""cnf_teach: conditional normalizing flows, built up step by step.

A teaching library after Winkler, Worrall, Hoogeboom & Welling, *Learning Likelihoods
with Conditional Normalizing Flows* (2019, arXiv:1912.00042): bijections with
verified log-determinants, conditional priors, dequantization, and the paper's
super-resolution and vessel-segmentation models.
"""

from . import baselines, dequantization, distributions, flows, metrics, nets
from .distributions import ConditionalGaussianPrior, DiagonalGaussian, StandardNormal
from .flows import MultiScaleFlow
from .toy import VectorFlow

__version__ = "0.1.0"

__all__ = [
    "ConditionalGaussianPrior",
    "DiagonalGaussian",
    "MultiScaleFlow",
    "StandardNormal",
    "VectorFlow",
    "__version__",
    "baselines",
    "dequantization",
    "distributions",
    "flows",
    "metrics",
    "nets",
]
