"""What every command shares: one-line usage errors, checked arguments and outputs, and run locks.

The command line keeps three promises, and this module holds the means:

- errors a user can fix are one line with exit code 2: they are raised as
  :class:`~cnf_teach.errors.UsageError` (:func:`usage_error` shortens a library's error to its
  first line), and numbers are checked by ``argparse`` types (:func:`int_arg`,
  :func:`float_arg`, :func:`seed_arg`) before anything runs, with bounds that keep a typing
  slip from asking for a model or a loop without end;
- every output is checked before the work starts (:func:`output_file`, :func:`output_folder`):
  a path, not a folder where a file is due, in a folder that exists (or is created) and is
  writable, and not an existing file unless the user passes ``--force``;
- nothing is lost: files are written to a temporary name and renamed into place
  (:func:`write_text`), data folders are built in a temporary folder and renamed when complete
  (:func:`building_folder`), and a run folder is locked while a run writes it (:class:`RunLock`),
  so that a second run on the same folder stops with one line instead of sharing its files.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import torch

from ..engine import resolve_device
from ..engine.devices import compile_unavailable
from ..errors import UsageError

__all__ = [
    "COMPILE_AUTO_STEPS",
    "IMAGE_SUFFIXES",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_STEPS",
    "RunLock",
    "add_compile_flag",
    "building_folder",
    "compile_choice",
    "float_arg",
    "int_arg",
    "output_file",
    "output_folder",
    "pick_device",
    "seed_arg",
    "usage_error",
    "write_file",
    "write_text",
]

#: Seeds every generator accepts (NumPy's legacy seeding takes 32 bits).
MAX_SEED = 2**32 - 1
#: The most training steps (or steps between checkpoints) a command accepts.
MAX_STEPS = 10**9
#: The largest image side (pixels) a size option accepts.
MAX_SIDE = 4096
#: Image files the commands write (PIL chooses the format by the suffix).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Training runs of at least this many steps compile their step unless told not to. On a 2-core
#: CPU the compilation costs about 2 minutes and paid for itself after 2,400 to 5,300 steps of the
#: tiny and small models (the Benchmarks page, "Compiled training on the CPU"); shorter runs lose.
COMPILE_AUTO_STEPS = 10_000


def add_compile_flag(parser: argparse.ArgumentParser) -> None:
    """``--compile`` / ``--no-compile`` of a train command; neither: :func:`compile_choice` decides."""
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the training step (CUDA, or the CPU with a C++ compiler); "
        f"default: on for runs of at least {COMPILE_AUTO_STEPS} steps where it can run",
    )


def compile_choice(flag: bool | None, steps: int, device: torch.device) -> bool:
    """Whether a train command compiles: as ``--compile``/``--no-compile`` say, else for long runs.

    Without a flag, runs of at least :data:`COMPILE_AUTO_STEPS` steps compile where
    ``torch.compile`` can run (CUDA; the CPU with a C++ compiler); shorter runs would spend
    more time compiling than the compiled steps save. An explicit ``--compile`` where it cannot
    run trains eagerly with a warning (the engine's).
    """
    if flag is not None:
        return flag
    return steps >= COMPILE_AUTO_STEPS and compile_unavailable(device) is None


def usage_error(err: Exception | str) -> UsageError:
    """A :class:`~cnf_teach.errors.UsageError` holding the first line of ``err`` (its type when it has no text)."""
    text = str(err).strip()
    return UsageError(text.splitlines()[0] if text else type(err).__name__)


def pick_device(name: str) -> torch.device:
    """``--device`` as a ``torch.device`` (``auto``: CUDA, then MPS, then the CPU); a one-line error otherwise."""
    try:
        return resolve_device(name)
    except (ValueError, RuntimeError) as err:
        raise usage_error(err) from None


# --- numbers -----------------------------------------------------------------------------------
def int_arg(low: int, high: int) -> Callable[[str], int]:
    """An ``argparse`` type: an integer in ``[low, high]`` (written as digits: ``1e8`` is refused)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; use {low} to {high}")
        return value

    parse.__name__ = "int"
    return parse


def float_arg(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An ``argparse`` type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``); no NaN or inf."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            raise argparse.ArgumentTypeError(
                f"{text} is out of range; use a finite number {bound} and at most {high:g}"
            )
        return value

    parse.__name__ = "float"
    return parse


def seed_arg(text: str) -> int:
    """An ``argparse`` type: a seed, ``0 <= seed <= 2**32 - 1``."""
    return int_arg(0, MAX_SEED)(text)


# --- outputs -----------------------------------------------------------------------------------
def _writable_parent(path: Path, flag: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder; choose another path") from None
    except OSError as err:
        raise UsageError(
            f"{flag} {path}: cannot create its folder {parent} ({err.strerror}); choose another path"
        ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: the folder {parent} is not writable; choose another path")


def output_file(path: str | None, flag: str, force: bool = False, suffixes: tuple[str, ...] = ()) -> Path | None:
    """Check an output file before the work starts; ``None`` when the option was not given.

    Args:
        path: The path the user passed (``None``: the option is absent).
        flag: The option's name, for the messages (``"--json"``).
        force: Whether the user allows replacing an existing file (``--force``).
        suffixes: File types the writer can produce (``(".png",)``); empty: any.

    Raises:
        UsageError: an empty path, a folder or special file where the file is due, an existing
            file without ``force``, a suffix the writer cannot write, or a folder that cannot be
            created or written.
    """
    if path is None:
        return None
    if not str(path).strip():
        raise UsageError(f"{flag} is empty; pass a file path")
    out = Path(path)
    if out.is_dir():
        raise UsageError(f"{flag} {out} is a folder; pass a file path")
    if suffixes and out.suffix.lower() not in suffixes:
        raise UsageError(
            f"{flag} {out}: cannot write a {out.suffix or 'suffix-less'} file; use {' or '.join(suffixes)}"
        )
    if out.exists() or out.is_symlink():
        if not out.is_file():
            raise UsageError(f"{flag} {out} is not a regular file; pass a file path")
        if not force:
            raise UsageError(f"{flag} {out} exists; pass --force to replace it, or choose another path")
        if not os.access(out, os.W_OK):
            raise UsageError(f"{flag} {out} is read-only; choose another path")
    _writable_parent(out, flag)
    return out


def output_folder(path: str | None, flag: str, files: tuple[str, ...], force: bool = False) -> Path | None:
    """Check a folder that will receive ``files`` before the work starts (created if missing).

    Raises:
        UsageError: an empty path, a file where the folder is due, one of ``files`` already
            there without ``force``, or a folder that cannot be created or written.
    """
    if path is None:
        return None
    if not str(path).strip():
        raise UsageError(f"{flag} is empty; pass a folder")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file, not a folder; choose another path")
    for name in files:
        output_file(str(out / name), flag, force)
    return out


def write_file(path: Path, writer: Callable[[str], object]) -> None:
    """Write ``path`` atomically: ``writer(tmp)`` writes a temporary file beside it, renamed over ``path``.

    The temporary name keeps the suffix, so writers that choose a format by it (PIL, matplotlib) work.
    """
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        writer(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`write_file`)."""
    write_file(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def building_folder(final: Path, force: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``final`` to write into; renamed to ``final`` when the block completes.

    A kill or an error leaves ``final`` as it was (the temporary folder, named
    ``.NAME.partial-PID``, is removed on an error; after a kill it is left beside ``final``,
    never taken for a complete one). An existing ``final`` that is not an empty folder is refused
    unless ``force``, which replaces it when the new one is complete.

    Raises:
        UsageError: ``final`` exists (a file, or a folder with files) and ``force`` is not set.
    """
    if final.exists() and not (final.is_dir() and not any(final.iterdir())) and not force:
        raise UsageError(f"{final} exists and is not empty; pass --force to replace it, or choose another folder")
    if final.exists() and not final.is_dir():
        raise UsageError(f"{final} is a file, not a folder; choose another path")
    _writable_parent(final, "the folder")
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)  # our own leftover, from this process id
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        if final.is_dir() and not any(final.iterdir()):
            final.rmdir()
        else:  # force: the complete new folder replaces the old one
            old = final.with_name(f".{final.name}.replaced-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
            return
    os.replace(tmp, final)


# --- run folders -------------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on a run folder while a run writes it (``FOLDER/.lock``).

    The lock is the operating system's (``flock``), so it is released when the process ends, even
    by ``kill -9``; the file itself stays and is reused. A second run on the same folder stops at
    once with a one-line :class:`~cnf_teach.errors.UsageError` instead of sharing its checkpoint.
    Without ``fcntl`` (Windows) the lock is a file created exclusively and removed on exit.

    Args:
        folder: The run folder (created if missing).
        flag: The option that named it, for the messages.

    Examples:
        >>> import tempfile
        >>> from cnf_teach.commands.common import RunLock
        >>> from cnf_teach.errors import UsageError
        >>> with tempfile.TemporaryDirectory() as run:
        ...     with RunLock(run):
        ...         try:
        ...             RunLock(run).acquire()
        ...         except UsageError as err:
        ...             print(str(err).split(";")[0].replace(run, "RUN"))
        ...     RunLock(run).acquire().release()  # free again once the first run is done
        another run is writing RUN (its lock RUN/.lock is held)
    """

    def __init__(self, folder: str | os.PathLike, flag: str = "--out") -> None:
        self.folder = Path(folder)
        self.flag = flag
        self.path = self.folder / ".lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`~cnf_teach.errors.UsageError` if another run holds it."""
        if self.folder.exists() and not self.folder.is_dir():
            raise UsageError(f"{self.flag} {self.folder} is a file, not a folder; choose another path")
        _writable_parent(self.folder / ".lock", self.flag)
        busy = (
            f"another run is writing {self.folder} (its lock {self.path} is held); "
            f"wait for it to finish or choose another {self.flag}"
        )
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            try:
                self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise UsageError(busy) from None
            return self
        if self.path.exists() and not stat.S_ISREG(self.path.lstat().st_mode):
            raise UsageError(f"{self.path} is not a regular file; remove it or choose another {self.flag}")
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(busy) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (closing the file releases ``flock``)."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        try:
            import fcntl  # noqa: F401
        except ImportError:  # pragma: no cover - Windows: the file is the lock
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
