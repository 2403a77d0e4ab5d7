"""Networks that flows use but never invert: coupling networks and conditioners."""

from .conditioners import ConvConditioner, resize_to
from .coupling_nets import MLP, CouplingConvNet, NetFactory, zero_init_
from .rrdb import RRDB, RRDBConditioner, RRDBNet
from .vgg import InstanceNormCouplingNet, VGGFeatures

__all__ = [
    "MLP",
    "ConvConditioner",
    "CouplingConvNet",
    "NetFactory",
    "RRDB",
    "RRDBConditioner",
    "RRDBNet",
    "resize_to",
    "zero_init_",
    "InstanceNormCouplingNet",
    "VGGFeatures",
]
