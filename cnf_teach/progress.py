"""Progress reporting that fits where it runs: a live bar on a terminal, log lines elsewhere.

A training run or an evaluation loop reports its progress through :class:`Progress` (or the
iterator :func:`track`). Where the output is read by a person as it happens the report is a live
tqdm bar; where it is written to a file (a log, a batch job, CI) a bar would be hundreds of
carriage-return redraws per minute, so the report becomes one log line every ``every_seconds``
seconds or ``every_steps`` steps instead, each with the step, the latest metrics (loss, bits/dim),
the rate and the time left::

    train sr: 1200/5000 steps (24%), loss=3.214 bpd=4.562, 12.3 steps/s, elapsed 0:01:38, ETA 0:05:09

How the mode is chosen (``mode="auto"``):

- ``CNF_TEACH_PROGRESS=bar|log|off`` in the environment wins;
- inside a Jupyter kernel: a bar (tqdm's notebook widget where ``ipywidgets`` is installed);
- a stream that is a terminal (``stream.isatty()``, ``sys.stderr`` by default): a bar;
- anything else: log lines, through :mod:`logging` at level INFO (the command line and the
  benchmarks configure logging; a library caller may pass its own ``logger``).

This module depends only on the standard library and tqdm, so any part of the package may use it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, Literal, TypeVar

__all__ = ["Progress", "track", "progress_mode", "format_seconds", "ENV_VAR"]

ENV_VAR = "CNF_TEACH_PROGRESS"
Mode = Literal["auto", "bar", "log", "off"]
_MODES = ("auto", "bar", "log", "off")
T = TypeVar("T")

_log = logging.getLogger(__name__)


def _in_jupyter_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means "not in a kernel"
        return False
    return getattr(shell, "kernel", None) is not None


def progress_mode(mode: Mode = "auto", stream: IO[str] | None = None) -> Literal["bar", "log", "off"]:
    """Resolve ``mode`` to the report actually used: ``"bar"``, ``"log"`` or ``"off"``.

    Args:
        mode: ``"auto"`` picks from the environment variable ``CNF_TEACH_PROGRESS``, a Jupyter
            kernel or ``stream.isatty()`` (see the module docstring); the others are returned as is.
        stream: The stream a bar would be drawn on; default ``sys.stderr``.

    Raises:
        ValueError: ``mode`` or ``CNF_TEACH_PROGRESS`` is not one of auto, bar, log, off.
    """
    if mode not in _MODES:
        raise ValueError(f"progress mode {mode!r} is not one of {', '.join(_MODES)}")
    if mode != "auto":
        return mode
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced and forced != "auto":
        if forced not in _MODES:
            raise ValueError(f"{ENV_VAR}={forced!r} is not one of {', '.join(_MODES)}; unset it or pick one of them")
        return forced  # type: ignore[return-value]
    if _in_jupyter_kernel():
        return "bar"
    stream = sys.stderr if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return "bar" if tty else "log"


def format_seconds(seconds: float) -> str:
    """``3723.4 -> "1:02:03"``: whole seconds as hours:minutes:seconds."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """A progress report with tqdm's small interface (``update``, ``set_postfix``, ``close``).

    Args:
        total: Number of steps expected, or ``None`` when unknown (e.g. under a time budget:
            then the report counts steps and shows no fraction or ETA).
        desc: What is running, shown first (``"train sr"``).
        initial: Steps already done (a resumed run).
        unit: The name of one step, plural with an ``s`` in log lines.
        enabled: ``False`` reports nothing (e.g. on every rank but 0).
        mode: ``"auto"``, ``"bar"``, ``"log"`` or ``"off"``; see :func:`progress_mode`.
        stream: Where a bar is drawn and whose ``isatty()`` decides; default ``sys.stderr``.
        every_seconds: In log mode, the longest time between two lines (``None``: no time rule).
        every_steps: In log mode, also a line every this many steps (``None``: no step rule).
        leave: Keep the bar after closing; in log mode, always write a closing line. With
            ``leave=False`` (short inner loops) a closing line is written only if the loop lasted
            long enough to write a line before.
        logger: Where log lines go (level INFO); default this module's logger.
        clock: Monotonic clock in seconds (tests pass a fake one).

    Raises:
        ValueError: A negative ``total``, ``initial`` or interval.

    Examples:
        >>> import itertools
        >>> from cnf_teach.progress import Progress
        >>> clock = itertools.count().__next__  # a fake clock: one second per reading
        >>> progress = Progress(10, desc="train sr", mode="log", clock=clock)
        >>> progress.update(4)
        >>> progress.set_postfix(loss=3.2)
        >>> progress.line()  # what log mode writes
        'train sr: 4/10 steps (40%), loss=3.2, 2 steps/s, elapsed 0:00:02, ETA 0:00:03'
        >>> progress.close()
        >>> Progress(10, enabled=False).mode  # e.g. on every DDP rank but 0
        'off'
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        desc: str = "",
        initial: int = 0,
        unit: str = "step",
        enabled: bool = True,
        mode: Mode = "auto",
        stream: IO[str] | None = None,
        every_seconds: float | None = 30.0,
        every_steps: int | None = None,
        leave: bool = True,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total must be >= 0 or None, got {total}")
        if initial < 0:
            raise ValueError(f"initial must be >= 0, got {initial}")
        if every_seconds is not None and every_seconds <= 0:
            raise ValueError(f"every_seconds must be > 0 or None, got {every_seconds}")
        if every_steps is not None and every_steps <= 0:
            raise ValueError(f"every_steps must be > 0 or None, got {every_steps}")
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = initial
        self.initial = initial
        self.every_seconds = every_seconds
        self.every_steps = every_steps
        self.leave = leave
        self.postfix: dict[str, str] = {}
        self.lines = 0  # log lines written so far
        self.mode = progress_mode(mode, stream) if enabled else "off"
        self._logger = logger or _log
        self._clock = clock
        self._start = clock()
        self._last_time = self._start
        self._last_n = initial
        self._closed = False
        self._bar: Any = None
        if self.mode == "bar":
            self._bar = self._make_bar(stream)

    def _make_bar(self, stream: IO[str] | None) -> Any:
        if _in_jupyter_kernel() and stream is None:
            from tqdm.auto import tqdm as bar_cls  # the notebook widget where ipywidgets is installed
        else:
            from tqdm.std import tqdm as bar_cls
        return bar_cls(
            total=self.total,
            initial=self.initial,
            desc=self.desc,
            unit=self.unit,
            file=stream,
            leave=self.leave,
            dynamic_ncols=True,
        )

    # --- the tqdm-like interface ---------------------------------------------------------------

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; in log mode write a line when an interval has passed."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = self._clock()
            due_steps = self.every_steps is not None and self.n - self._last_n >= self.every_steps
            due_time = self.every_seconds is not None and now - self._last_time >= self.every_seconds
            finished = self.total is not None and self.n >= self.total  # close() writes the last line
            if (due_steps or due_time) and not finished:
                self._write(now)

    def set_postfix(self, values: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        """Show these metrics (e.g. ``{"loss": 3.2, "bpd": 4.5}``) next to the count."""
        merged = {**(values or {}), **kwargs}
        self.postfix = {k: _format_value(v) for k, v in merged.items()}
        if self._bar is not None:
            self._bar.set_postfix(self.postfix, refresh=False)

    def close(self) -> None:
        """End the report: close the bar, or write the closing log line (see ``leave``)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log" and (self.leave or self.lines) and (self.n != self._last_n or not self.lines):
            self._write(self._clock(), done=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- log lines -----------------------------------------------------------------------------

    def line(self, now: float | None = None, done: bool = False) -> str:
        """The log line for the current state (what log mode writes)."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        units = self.unit + "s"
        if self.total:
            parts = [f"{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)"]
        else:
            parts = [f"{self.n} {units}"]
        if self.postfix:
            parts.append(" ".join(f"{k}={v}" for k, v in self.postfix.items()))
        parts.append(f"{rate:.3g} {units}/s")
        parts.append(f"elapsed {format_seconds(elapsed)}")
        if not done and self.total and rate > 0 and self.n < self.total:
            parts.append(f"ETA {format_seconds((self.total - self.n) / rate)}")
        head = f"{self.desc}: " if self.desc else ""
        return head + ", ".join(parts) + (" (done)" if done else "")

    def _write(self, now: float, done: bool = False) -> None:
        self._logger.info("%s", self.line(now, done))
        self.lines += 1
        self._last_time = now
        self._last_n = self.n


def track(iterable: Iterable[T], total: int | None = None, **kwargs: Any) -> Iterator[T]:
    """Iterate over ``iterable`` while reporting progress, as ``for x in tqdm(iterable)`` does.

    Args:
        iterable: What to iterate over.
        total: Its length; taken from ``len(iterable)`` when it has one.
        **kwargs: Passed to :class:`Progress` (``desc``, ``enabled``, ``leave``, ...).
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(total, **kwargs) as progress:
        for item in iterable:
            yield item
            progress.update(1)
