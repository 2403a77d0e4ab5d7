"""Complete models: the 2D toy flow here; the SR and vessel CNFs in their own modules."""

from .seg import SegBaseline, SegConfig, SegFlow
from .sr import SRConfig, SuperResolutionBaseline, SuperResolutionCNF
from .vector_flow import VectorFlow

__all__ = [
    "VectorFlow",
    "SegBaseline",
    "SegConfig",
    "SegFlow",
    "SRConfig",
    "SuperResolutionBaseline",
    "SuperResolutionCNF",
]
