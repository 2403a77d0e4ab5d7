"""Deprecated: the old path of ``cnf-teach seg``, now :mod:`cnf_teach.commands.seg`.

Re-exported here for one release; import from :mod:`cnf_teach.commands.seg` instead. The commands
moved to the package's top floor, above the applications and the shipped models they use.
"""

import warnings

from ..commands.seg import *  # noqa: F403
from ..commands.seg import __all__  # noqa: F401

warnings.warn(
    "cnf_teach.vessels.command is deprecated and will be removed in the next release; import cnf_teach.commands.seg",
    DeprecationWarning,
    stacklevel=2,
)
