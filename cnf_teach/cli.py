"""The command-line interface: ``cnf-teach`` / ``python -m cnf_teach``.

Each task brings its subcommand in a module of :mod:`cnf_teach.commands` that
defines ``register(subparsers)``; this file finds them, so adding a task never
edits it. A handler returns an exit code. Errors the user can fix (a missing
folder, a bad argument) are raised as :class:`UsageError` and printed as one line
with exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from . import __version__, commands

__all__ = ["UsageError", "build_parser", "main"]


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand found in :mod:`cnf_teach.commands`."""
    parser = argparse.ArgumentParser(
        prog="cnf-teach",
        description="Conditional normalizing flows (Winkler et al. 2019): train, evaluate and sample the models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
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
