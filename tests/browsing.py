"""Debian's Chromium driven by Playwright, for the browser tests of the site and of JupyterLab.

Playwright never downloads a browser here: it drives the Chromium that ``.ci/run`` installs from
Debian (or ``$CNF_TEACH_CHROMIUM``). On CI a missing browser or Playwright is a failure, elsewhere a
visible skip.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

__all__ = ["find_chromium", "launch_chromium", "screenshot_folder"]


def find_chromium() -> str | None:
    """Path of a runnable Chromium, or ``None``."""
    for candidate in (os.environ.get("CNF_TEACH_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch_chromium(flags: Sequence[str]) -> Iterator[object]:
    """Yield a headless Playwright browser context (for a fixture); skip or fail when it cannot start."""
    chromium = find_chromium()
    reason = "Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it"
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail(reason + ", but it is missing on CI")
        pytest.skip(reason)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("playwright is not installed on CI: pip install -e '.[docs]'")
        pytest.skip("playwright is not installed: pip install -e '.[docs]'")
    with tempfile.TemporaryDirectory(prefix="cnf-teach-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=list(flags),
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def screenshot_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$CNF_TEACH_SCREENSHOTS`` if set (to look at them), else a temporary folder."""
    folder = os.environ.get("CNF_TEACH_SCREENSHOTS")
    out = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {out}")
    return out
