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
import traceback
import zipfile
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import UsageError

__all__ = ["COMMANDS", "OneLineParser", "UsageError", "build_parser", "main"]

log = logging.getLogger(__name__)

#: Modules that each register one subcommand, in the order of ``--help``.
COMMANDS = (
    "cnf_teach.commands.convert",
    "cnf_teach.commands.sr",
    "cnf_teach.commands.toy",
    "cnf_teach.commands.seg",
)


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line on stderr (and exit code 2), like every other error.

    ``argparse`` prints its usage block above the error; here the error alone, naming ``--help``.
    Subcommand parsers are of the same class (``add_subparsers`` makes them so).

    Examples:
        >>> import contextlib, io
        >>> from cnf_teach.cli import OneLineParser
        >>> parser = OneLineParser(prog="demo")
        >>> _ = parser.add_argument("--steps", type=int)
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     try:
        ...         parser.parse_args(["--steps", "1e23"])
        ...     except SystemExit as stop:
        ...         print(stop.code)
        2
        >>> err.getvalue()
        "demo: error: argument --steps: invalid int value: '1e23' (see demo --help)\\n"
    """

    def error(self, message: str) -> NoReturn:
        root = self.prog.split()[0]  # every error of the CLI starts "cnf-teach: error:"
        self.exit(2, f"{root}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


#: Errors of the user's input or environment that reach the top without a :class:`UsageError`
#: (a library refusing a value, a file that cannot be read or written): one line and exit code 2.
_INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, zipfile.BadZipFile, MemoryError)


def _input_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image

    from .engine import TrainingDiverged

    return (*_INPUT_ERRORS, Image.DecompressionBombError, TrainingDiverged)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with the subcommand of every module in :data:`COMMANDS`."""
    parser = OneLineParser(
        prog="cnf-teach",
        description="Conditional normalizing flows (Winkler et al. 2019): train, evaluate and sample the models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug messages, and show the traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a bad argument (one line, already printed)
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s")
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UsageError as err:
        return _fail(str(err), 2, args.verbose)
    except KeyboardInterrupt:
        return _fail("interrupted", 130, args.verbose)
    except _input_errors() as err:
        return _fail(_first_line(err), 2, args.verbose)
    except Exception as err:  # a bug, not the user's: still one line, the traceback with -v
        return _fail(f"{_first_line(err)} (an internal error; run with -v for the traceback)", 1, args.verbose)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{first} ({type(err).__name__})" if first else type(err).__name__


def _fail(message: str, code: int, verbose: bool) -> int:
    """Print the error as one line on stderr (after the traceback, with ``-v``); return the exit code."""
    if verbose and sys.exc_info()[0] is not None:
        traceback.print_exc(file=sys.stderr)
    print(f"cnf-teach: error: {' '.join(message.split())}", file=sys.stderr)
    return code
