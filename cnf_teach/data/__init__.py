"""Data: toy densities, and (in later modules) image sets, resizing and DRIVE."""

from .imagenet import DownsampledImageNet
from .images import SRImageDataset, SRImageFolder, crop_to, pad_to_multiple
from .imresize import imresize, imresize_np
from .natural import natural_sr_dataset
from .toy import TOY_DENSITIES, ConditionalMixture2D, checkerboard, eight_gaussians, two_moons

__all__ = [
    "TOY_DENSITIES",
    "imresize",
    "imresize_np",
    "DownsampledImageNet",
    "SRImageDataset",
    "SRImageFolder",
    "crop_to",
    "pad_to_multiple",
    "natural_sr_dataset",
    "ConditionalMixture2D",
    "checkerboard",
    "eight_gaussians",
    "two_moons",
]
