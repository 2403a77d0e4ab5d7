"""Networks that flows use but never invert: coupling networks and conditioners."""

from .conditioners import ConvConditioner, resize_to
from .coupling_nets import MLP, CouplingConvNet, NetFactory, zero_init_
from .vgg import InstanceNormCouplingNet, VGGFeatures

__all__ = [
    "MLP",
    "ConvConditioner",
    "CouplingConvNet",
    "NetFactory",
    "resize_to",
    "zero_init_",
    "InstanceNormCouplingNet",
    "VGGFeatures",
]
