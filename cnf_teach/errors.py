"""Errors the user can fix: the command line prints them as one line, with exit code 2."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A problem with the user's input (a missing folder, a bad argument): one line, exit code 2."""
