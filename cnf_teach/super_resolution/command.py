"""Deprecated: the old path of ``cnf-teach sr``, now :mod:`cnf_teach.commands.sr`.

Re-exported here for one release; import from :mod:`cnf_teach.commands.sr` instead. The commands
moved to the package's top floor, above the applications and the shipped models they use.
"""

import warnings

from ..commands.sr import *  # noqa: F403
from ..commands.sr import __all__  # noqa: F401

warnings.warn(
    "cnf_teach.super_resolution.command is deprecated and will be removed in the next release; "
    "import cnf_teach.commands.sr",
    DeprecationWarning,
    stacklevel=2,
)
