"""The documentation site: it builds strictly, loads nothing from other hosts, and renders in a browser.

The build is ``mkdocs build --strict`` into a temporary folder, so any warning (a broken link, a
docstring that names a parameter the signature lacks, a notebook committed with an error, a page
that would load a script from a CDN) fails the suite. The browser tests serve the built site on
127.0.0.1 and open it in headless Chromium through Playwright (Debian's ``chromium``, never a
downloaded browser): the home page, a tutorial and an API page must have their math typeset by
the site's own MathJax, the notebook its figures, the search must find "dequantization", the
console must stay free of errors, and no request may leave 127.0.0.1. Screenshots go to
``$CNF_TEACH_SCREENSHOTS`` when set, else to a temporary folder (its path is printed).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import launch_chromium, screenshot_folder
from conftest import REPO

pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# What makes a browser fetch from another host when a page opens (links to click are fine).
EXTERNAL_LOAD = re.compile(
    r"<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc=\"(?:https?:)?//|"
    r"<link\b[^>]*\bhref=\"(?:https?:)?//|@import\s+url\(\s*['\"]?(?:https?:)?//",
    re.I,
)
# A TeX command still between dollars after typesetting: math that MathJax did not see.
RAW_INLINE_TEX = re.compile(r"\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")


def _notebooks() -> list[Path]:
    return sorted((REPO / "tutorials").glob("*.ipynb"))


def _image_outputs(nb_path: Path) -> int:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return sum(
        1
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
        if any(k.startswith("image/") for k in out.get("data", {}))
    )


def _has_math(nb_path: Path) -> bool:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    return any(cell["cell_type"] == "markdown" and "$" in "".join(cell["source"]) for cell in nb["cells"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with ``mkdocs build --strict`` into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    problems = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems or [proc.stderr[-4000:]])
    print(f"\nsite built in {time.perf_counter() - start:.1f} s")
    return out


def test_site_has_every_part(site: Path) -> None:
    for page in ["index.html", "installation/index.html", "tutorials/index.html", "paper-to-code/index.html"]:
        assert (site / page).is_file(), f"{page} is missing from the site"
    assert (site / "api/index.html").is_file()
    assert (site / "api/toy/vector_flow/index.html").is_file(), "the API pages are not generated per module"
    # A subpackage's overview (its __init__ docstring) heads its section, without repeating its members.
    overview = (site / "api/dequantization/index.html").read_text(encoding="utf-8")
    assert "continuous flows as lower bounds on the likelihood of discrete data" in overview
    assert 'id="cnf_teach.dequantization.UniformDequantization"' not in overview  # members: own pages
    assert 'href="uniform/#cnf_teach.dequantization.uniform.UniformDequantization"' in overview  # linked there
    # Sphinx roles in docstrings become links (where the target is on the site) or code, never raw text.
    roles = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>")
    for page in (site / "api").rglob("index.html"):
        assert not roles.search(page.read_text(encoding="utf-8")), f"{page}: a raw Sphinx role"
    trainer = (site / "api/engine/trainer/index.html").read_text(encoding="utf-8")
    assert re.search(r'<a class="autorefs[^>]*href="[^"]*#cnf_teach\.engine\.evaluation\.ShardedEval"', trainer)
    assert (site / "assets/mathjax/tex-chtml.js").is_file(), "MathJax is not served from the site"
    assert (site / "assets/mathjax/output/chtml/fonts/woff-v2").is_dir(), "MathJax's fonts are missing"
    for nb in _notebooks():
        page = site / "tutorials" / nb.stem / "index.html"
        assert page.is_file(), f"{nb.name} is not rendered"
        assert (site / "tutorials" / nb.stem / nb.name).is_file(), f"{nb.name} cannot be downloaded"
        assert f'href="{nb.name}"' in page.read_text(encoding="utf-8"), f"the page of {nb.name} has no download link"
        if (REPO / "tutorials" / "student" / nb.name).is_file():
            assert (site / "tutorials" / nb.stem / "student" / nb.name).is_file(), f"no student version of {nb.name}"
            assert f'href="student/{nb.name}"' in page.read_text(encoding="utf-8")
    html = (site / "tutorials/index.html").read_text(encoding="utf-8")
    for nb in _notebooks():
        assert f"{nb.stem}/" in html, f"the tutorials index does not list {nb.name}"


def test_no_page_loads_from_another_host(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        text = page.read_text(encoding="utf-8")
        hit = EXTERNAL_LOAD.search(text)
        assert hit is None, f"{page.relative_to(site)} loads from another host: {text[hit.start() : hit.end() + 80]}"
        for host in ("cdnjs", "cdn.jsdelivr", "unpkg.com", "googleapis", "gstatic", "polyfill.io"):
            assert host not in text, f"{page.relative_to(site)} mentions {host}"


def test_pages_name_only_tests_and_notebooks_that_exist() -> None:
    """The paper-to-code map and the other pages cite tests and notebooks by path: each must exist.

    (Code objects are cited as cross-references, which the strict build already checks.)
    """
    cited_tests = 0
    for page in sorted((REPO / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for path, name in re.findall(r"(tests/[\w/]+\.py)::(\w+)", text):
            source = REPO / path
            assert source.is_file(), f"{page.name} cites {path}, which does not exist"
            assert re.search(rf"^\s*def {name}\(", source.read_text(encoding="utf-8"), re.M), (
                f"{page.name} cites {path}::{name}, which does not exist"
            )
            cited_tests += 1
        for nb in re.findall(r"tutorials/(\w+\.ipynb)", text):
            assert (REPO / "tutorials" / nb).is_file(), f"{page.name} cites tutorials/{nb}, which does not exist"
    assert cited_tests >= 10, "the paper-to-code map should cite the tests that check each equation"


# --- In a browser -----------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from launch_chromium(CHROMIUM_FLAGS)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory)


class _Visit:
    """One page, opened with listeners for console errors and for every request it makes."""

    def __init__(self, context: object, url: str) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url, wait_until="load", timeout=120_000)
        # MathJax typesets on load; wait until it is done.
        self.page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000
        )
        self.page.evaluate("() => MathJax.startup.promise")

    def check_clean(self, base: str) -> None:
        assert not self.errors, f"console errors on {self.page.url}: {self.errors}"
        foreign = [u for u in self.requests if not u.startswith(base) and not u.startswith(("data:", "blob:"))]
        assert not foreign, f"{self.page.url} made requests to other hosts: {foreign}"

    def check_math(self, scope: str, text_of: str | None = None) -> int:
        """Count typeset formulas inside ``scope``; no raw TeX may be left in the text of ``text_of``.

        ``text_of`` (default: ``scope``) selects the elements whose visible text is searched for
        leftover delimiters: on notebook pages the markdown cells, not the code (whose strings may
        hold TeX for matplotlib).
        """
        count = self.page.locator(f"{scope} mjx-container").count()
        untypeset = self.page.evaluate(
            "() => [...document.querySelectorAll('.arithmatex')].filter(e => !e.querySelector('mjx-container'))"
            ".map(e => e.textContent.slice(0, 80))"
        )
        assert not untypeset, f"math left untypeset on {self.page.url}: {untypeset[:3]}"
        text = "\n".join(self.page.locator(text_of or scope).all_inner_texts())
        assert "$$" not in text, f"raw $$ left on {self.page.url}"
        raw = RAW_INLINE_TEX.search(text)
        assert raw is None, f"raw TeX left on {self.page.url}: {raw.group(0)[:80]}"
        return count

    def check_images(self, scope: str) -> int:
        images = self.page.locator(f"{scope} img")
        widths = images.evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
        assert all(w > 0 for w in widths), f"an image on {self.page.url} did not load: {widths}"
        return len(widths)


def test_home_page_in_browser(browser: object, server: str, shots: Path) -> None:
    visit = _Visit(browser, server)
    assert visit.check_math("article") >= 2, "the home page's formulas were not typeset"
    assert visit.check_images("article") >= 1, "the home page has no figure"
    visit.page.screenshot(path=str(shots / "home.png"))
    visit.page.screenshot(path=str(shots / "home-full.png"), full_page=True)
    visit.page.locator("form[data-md-component='palette'] label:visible").first.click()  # to the dark palette
    visit.page.wait_for_function("() => document.body.dataset.mdColorScheme === 'slate'", timeout=30_000)
    visit.page.screenshot(path=str(shots / "home-dark.png"))
    visit.check_clean(server)
    visit.page.close()


def test_search_finds_dequantization(browser: object, server: str, shots: Path) -> None:
    visit = _Visit(browser, server)
    search = visit.page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("dequantization", delay=30)  # typed: Material searches on key events
    results = visit.page.locator(".md-search-result__item")
    results.first.wait_for(timeout=60_000)
    assert results.count() >= 1
    assert "dequantization" in visit.page.locator(".md-search-result").inner_text().lower()
    visit.page.screenshot(path=str(shots / "search.png"))
    visit.check_clean(server)
    visit.page.close()


def test_tutorial_page_in_browser(browser: object, server: str, shots: Path) -> None:
    candidates = [nb for nb in _notebooks() if _image_outputs(nb) and _has_math(nb)]
    if not candidates:
        pytest.skip("no executed notebook with figures and math in tutorials/ yet")
    nb = candidates[0]
    visit = _Visit(browser, server + f"tutorials/{nb.stem}/")
    typeset = visit.check_math(".jupyter-wrapper", text_of=".jupyter-wrapper .jp-RenderedMarkdown")
    assert typeset >= 1, f"no formula of {nb.name} was typeset"
    expected = _image_outputs(nb)
    shown = visit.check_images(".jupyter-wrapper .jp-OutputArea-output")
    assert shown == expected, f"{nb.name} has {expected} figures, the page shows {shown}"
    download = visit.page.locator(f"a[href='{nb.name}']").first
    assert download.count() == 1, "no download link"
    response = visit.page.request.get(server + f"tutorials/{nb.stem}/{nb.name}")
    assert response.ok and json.loads(response.body())["cells"], "the notebook download is broken"
    visit.page.screenshot(path=str(shots / f"tutorial-{nb.stem}.png"))
    visit.page.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    visit.page.wait_for_timeout(500)  # let the header's title transition finish
    visit.page.screenshot(path=str(shots / f"tutorial-{nb.stem}-figure.png"))
    visit.check_clean(server)
    visit.page.close()


def test_api_page_in_browser(browser: object, server: str, shots: Path) -> None:
    visit = _Visit(browser, server + "api/toy/vector_flow/")
    assert visit.page.locator("[id='cnf_teach.toy.vector_flow.VectorFlow']").count() >= 1
    assert visit.check_math("article") >= 2, "docstring math was not typeset"
    visit.page.screenshot(path=str(shots / "api-vector_flow.png"))
    visit.check_clean(server)
    visit.page.close()
