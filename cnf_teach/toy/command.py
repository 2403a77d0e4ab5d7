"""Deprecated: the old path of ``cnf-teach toy``, now :mod:`cnf_teach.commands.toy`.

Re-exported here for one release; import from :mod:`cnf_teach.commands.toy` instead. The commands
moved to the package's top floor, above the applications and the shipped models they use.
"""

import warnings

from ..commands.toy import *  # noqa: F403
from ..commands.toy import __all__  # noqa: F401

warnings.warn(
    "cnf_teach.toy.command is deprecated and will be removed in the next release; import cnf_teach.commands.toy",
    DeprecationWarning,
    stacklevel=2,
)
