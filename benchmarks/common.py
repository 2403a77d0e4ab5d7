"""Shared plumbing of the benchmark scripts: device choice, timing, memory, tables, JSON.

Every script in ``benchmarks/`` times its candidates *interleaved*: repetition $r$
runs candidate A, then B, then C (the order rotating from one repetition to the
next), so that a burst of load from other processes hits every candidate alike.
Ratios are the median over repetitions of the per-repetition ratio, which cancels
slow drifts of the machine's speed; the absolute times reported next to them are
medians too.

Peak memory is measured as follows (see :func:`peak_memory_of`):

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus
  what was allocated before the call: the tensors the call itself needed.
- CPU: PyTorch's CPU allocator keeps no statistics and ``tracemalloc`` does not see
  its buffers, so we run the call once in a *fresh process* and report the growth of
  the resident set size: the peak RSS during the call minus the RSS just before it. On
  Linux the peak is ``VmHWM`` of ``/proc/self/status``, reset to the current RSS just
  before the call by writing 5 to ``/proc/self/clear_refs``; elsewhere it is
  ``ru_maxrss``, which a child process inherits from its parent, so there it is only
  meaningful when the call's peak exceeds the parent's. Allocator caching, the Python
  heap and oneDNN scratch space are included, so this is an upper bound on the tensors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from cnf_teach.engine import resolve_device as _resolve_device

__all__ = [
    "add_common_args",
    "interleaved_times",
    "machine_info",
    "median_ratio",
    "peak_memory_of",
    "print_table",
    "ratio_quartiles",
    "resolve_device",
    "synchronize",
    "write_json",
]


def resolve_device(name: str) -> torch.device:
    """The engine's :func:`cnf_teach.engine.resolve_device`, with its error as a clean exit."""
    try:
        return _resolve_device(name)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark script shares."""
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds (what CI runs)")
    parser.add_argument("--json", type=Path, default=None, help="write the result rows to this JSON file")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    parser.add_argument("--seed", type=int, default=0)


def chosen_models(spec: str, models: Sequence[str]) -> list[str]:
    """The names of a comma-separated ``--models`` value, each one of ``models`` (else exit with the choices)."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = sorted(set(names) - set(models))
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(models)}")
    return names


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so that wall-clock timing covers the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved_times(
    candidates: dict[str, Callable[[], object]],
    device: torch.device,
    reps: int,
    warmup: int = 2,
) -> dict[str, list[float]]:
    """Wall-clock seconds of each candidate, ``reps`` interleaved repetitions after warm-up.

    Args:
        candidates: Name -> a call doing the work once.
        device: Where the work runs (for synchronisation).
        reps: Timed repetitions per candidate.
        warmup: Untimed calls per candidate first (allocator, oneDNN/cuDNN plans, actnorm init).

    Returns:
        Name -> list of ``reps`` times, in the order they were taken.
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:  # rotate who goes first
            times[name].append(_timed(candidates[name], device))
    return times


def median_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median of the per-repetition ratios ``ours[r] / theirs[r]``."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def ratio_quartiles(ours: Sequence[float], theirs: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles of the per-repetition ratios: how far to trust the median."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return q1, q3


def _rss_bytes() -> int:
    try:
        import psutil
    except ImportError:  # Linux fallback: resident pages from /proc
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def _reset_peak_rss() -> None:
    """Linux >= 4.0: set the peak RSS (``VmHWM``) back to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_bytes() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # kilobytes on Linux


def peak_memory_of(fn: Callable[[], object], device: torch.device) -> int:
    """Bytes of memory a call needs at its peak, beyond what was in use before it.

    On CPU this is only meaningful for the first large call in a fresh process (see
    the module docstring): run it in a subprocess per configuration.
    """
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    before = _rss_bytes()
    _reset_peak_rss()
    fn()
    return max(_peak_rss_bytes() - before, 0)


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """Print ``rows`` as a Markdown table (so it pastes straight into the docs)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.4g}"
        if isinstance(v, (tuple, list)):
            return "–".join(fmt(x) for x in v)
        return str(v)

    if title:
        print(f"\n### {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")


def write_json(path: Path | None, payload: Any) -> None:
    """Write ``payload`` as indented JSON when a path was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
