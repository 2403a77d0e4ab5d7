"""Errors the user can fix: the command line prints them as one line, with exit code 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A problem with the user's input (a missing folder, a bad argument): one line, exit code 2.

    Examples:
        >>> from cnf_teach.errors import UsageError
        >>> try:
        ...     raise UsageError("no folder data/DRIVE; pass --data-root DIR")
        ... except UsageError as err:
        ...     print(f"cnf-teach: error: {err}")  # what the command line prints before exiting with code 2
        cnf-teach: error: no folder data/DRIVE; pass --data-root DIR
    """
