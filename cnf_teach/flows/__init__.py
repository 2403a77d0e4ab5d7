"""Bijections (data -> latent, with log-determinants) and their compositions.

Every layer follows one contract: ``z, logdet = layer(y, h=None)`` and
``y = layer.inverse(z, h=None)``, with ``logdet`` of shape ``[B]``.
"""

from ..utils import check_finite
from .actnorm import ActNorm, data_init, needs_data_init
from .base import Bijection, FlowSequence, Permute, Reverse, check_condition, sum_except_batch
from .conditional_actnorm import ConditionalActNorm
from .conv1x1 import InvertibleConv1x1
from .coupling import AdditiveCoupling, AffineCoupling
from .elementwise import ElementwiseAffine, Logit, Sigmoid
from .fixed_mixing import MIXINGS, FixedRotation, Mixing, make_mixing
from .multiscale import FlowStep, MultiScaleFlow
from .split import SplitPrior
from .squeeze import Squeeze

__all__ = [
    "MIXINGS",
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "Bijection",
    "ConditionalActNorm",
    "ElementwiseAffine",
    "FixedRotation",
    "FlowSequence",
    "FlowStep",
    "InvertibleConv1x1",
    "Logit",
    "Mixing",
    "MultiScaleFlow",
    "Permute",
    "Reverse",
    "Sigmoid",
    "SplitPrior",
    "Squeeze",
    "check_condition",
    "check_finite",
    "data_init",
    "make_mixing",
    "needs_data_init",
    "sum_except_batch",
]
