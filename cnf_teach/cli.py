"""The command-line interface: ``cnf-teach`` / ``python -m cnf_teach``.

The dispatcher only: each subcommand has its module in :mod:`cnf_teach.commands`
(:mod:`~cnf_teach.commands.convert`, :mod:`~cnf_teach.commands.sr`,
:mod:`~cnf_teach.commands.toy`, :mod:`~cnf_teach.commands.seg`), which defines
``register(subparsers)``; a handler returns an exit code. Errors the user can fix (a missing
folder, a bad argument) are raised as :class:`UsageError` and printed as one line with exit
code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import UsageError

__all__ = ["COMMANDS", "UsageError", "build_parser", "main"]

#: Modules that each register one subcommand, in the order of ``--help``.
COMMANDS = (
    "cnf_teach.commands.convert",
    "cnf_teach.commands.sr",
    "cnf_teach.commands.toy",
    "cnf_teach.commands.seg",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with the subcommand of every module in :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="cnf-teach",
        description="Conditional normalizing flows (Winkler et al. 2019): train, evaluate and sample the models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        print(f"cnf-teach: error: {err}", file=sys.stderr)
        return 2
