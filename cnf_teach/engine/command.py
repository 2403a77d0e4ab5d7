"""Deprecated: the old path of ``cnf-teach convert-checkpoint``, now :mod:`cnf_teach.commands.convert`.

Re-exported here for one release; import from :mod:`cnf_teach.commands.convert` instead. The commands
moved to the package's top floor, above the applications and the shipped models they use.
"""

import warnings

from ..commands.convert import *  # noqa: F403
from ..commands.convert import __all__  # noqa: F401

warnings.warn(
    "cnf_teach.engine.command is deprecated and will be removed in the next release; import cnf_teach.commands.convert",
    DeprecationWarning,
    stacklevel=2,
)
