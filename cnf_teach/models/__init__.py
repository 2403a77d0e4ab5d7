"""Complete models: the 2D toy flow here; the SR and vessel CNFs in their own modules."""

from .vector_flow import VectorFlow

__all__ = ["VectorFlow"]
