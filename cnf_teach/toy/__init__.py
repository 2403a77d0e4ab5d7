"""The 2D conditional toy: a conditional RealNVP for vectors.

:class:`VectorFlow` is the flow of notebooks 02, 04 and 05; the ``cnf-teach toy`` command
(:mod:`cnf_teach.commands.toy`, on the commands' floor) fits it to
:class:`~cnf_teach.data.ConditionalMixture2D`, whose exact log-density is known.
"""

from .vector_flow import VectorFlow

__all__ = ["VectorFlow"]
