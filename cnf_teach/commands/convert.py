"""``cnf-teach convert-checkpoint``: rewrite a checkpoint of an older release in the safe format.

Checkpoints of earlier releases pickled NumPy random states, so reading them means
unpickling, which runs whatever code a crafted file asks for. The current format loads with
PyTorch's ``weights_only`` loader and cannot run code (see :mod:`cnf_teach.engine.checkpoint`);
every command refuses the old files and names this one, which converts a file once, and only
with ``--trust-pickle``, the user's statement that the file comes from a source they trust.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import output_file

__all__ = ["register", "run_convert"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-checkpoint",
        help="rewrite an older (pickled) checkpoint in the safe format; unpickles it, so trusted files only",
        description=(
            "Read OLD (a checkpoint of an earlier release, which pickles Python objects) and write NEW in the "
            "current format, which loads without running code. Reading OLD unpickles it, and unpickling runs "
            "any code a crafted file contains: pass --trust-pickle only for a file whose origin you trust."
        ),
    )
    p.add_argument("old", metavar="OLD", help="the older checkpoint")
    p.add_argument("new", metavar="NEW", help="where to write the converted checkpoint")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow unpickling OLD, which can run arbitrary code: only for a file you trust",
    )
    p.add_argument("--force", action="store_true", help="replace an existing NEW")
    p.set_defaults(handler=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    from ..engine.checkpoint import convert_legacy_checkpoint, load_checkpoint
    from ..errors import UsageError

    new = output_file(args.new, "NEW", args.force)
    assert new is not None
    old = Path(args.old)
    if old.exists() and not old.is_file():  # a folder, FIFO or device: reading it could wait forever
        raise UsageError(f"OLD {old} is not a regular file; pass a checkpoint file")
    if old.exists() and new.exists() and old.resolve() == new.resolve():
        raise UsageError(f"NEW {new} is OLD itself; write the converted checkpoint to another file")
    try:
        path = convert_legacy_checkpoint(args.old, args.new, trust_pickle=args.trust_pickle)
        ckpt = load_checkpoint(path)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    kind = "training checkpoint" if "optimizer" in ckpt else "weights file"
    print(f"wrote {path}: a {ckpt['task']!r} {kind} in the safe format (version {ckpt['version']})")
    return 0
