"""Data: toy densities, and (in later modules) image sets, resizing and DRIVE."""

from .imresize import imresize, imresize_np
from .toy import TOY_DENSITIES, ConditionalMixture2D, checkerboard, eight_gaussians, two_moons

__all__ = [
    "TOY_DENSITIES",
    "imresize",
    "imresize_np",
    "ConditionalMixture2D",
    "checkerboard",
    "eight_gaussians",
    "two_moons",
]
