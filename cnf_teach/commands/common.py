"""What every command shares: one-line usage errors and the ``--device`` choice.

Errors a user can fix are raised as :class:`~cnf_teach.errors.UsageError`, which the CLI prints
as one line with exit code 2; :func:`usage_error` shortens a library's error to its first line.
"""

from __future__ import annotations

import torch

from ..engine import resolve_device
from ..errors import UsageError

__all__ = ["pick_device", "usage_error"]


def usage_error(err: Exception | str) -> UsageError:
    """A :class:`~cnf_teach.errors.UsageError` holding the first line of ``err`` (its type when it has no text)."""
    text = str(err).strip()
    return UsageError(text.splitlines()[0] if text else type(err).__name__)


def pick_device(name: str) -> torch.device:
    """``--device`` as a ``torch.device`` (``auto``: CUDA, then MPS, then the CPU); a one-line error otherwise."""
    try:
        return resolve_device(name)
    except ValueError as err:
        raise usage_error(err) from None
