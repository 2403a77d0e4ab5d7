"""MkDocs hooks that assemble the cnf_teach site from the repository as it is.

What they do, in build order:

- ``on_config``: fill the "Tutorials" and "API reference" sections of the nav from
  what exists: every ``tutorials/*.ipynb`` and every module of ``cnf_teach/``. A
  notebook or module that lands is on the site at the next build, with no edit to
  ``mkdocs.yml``. ``docs/benchmarks.md`` joins the nav, before the API reference, once
  it exists.
- ``on_files``: add those notebooks (rendered by mkdocs-jupyter straight from
  ``tutorials/``: no copies in ``docs/``), their generated student versions (as
  downloads), one generated API page per module (and an overview page per subpackage, its
  ``__init__`` docstring, heading its section), and MathJax 3, copied from the
  installed ``django-static-mathjax`` package, so that math is typeset by the site
  itself and never by a CDN.
- ``on_page_content``: on notebook pages, remove the scripts that nbconvert's
  template loads from CDNs (MathJax 2, mermaid), and add the download links; on API pages,
  turn the docstrings' Sphinx roles (``:class:`X```, ``:func:``, ``:mod:`` ...), which Markdown
  leaves as text, into cross-references (links where the target is on the site, plain code
  where it is not).
- ``on_post_page``: warn (so ``mkdocs build --strict`` fails) when a page would
  load anything from another host.

Warnings go through the ``mkdocs`` logger, so a strict build turns each into a failure.
"""

from __future__ import annotations

import ast
import html
import json
import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.cnf_teach")

PACKAGE = "cnf_teach"
TUTORIALS_INDEX = "tutorials/index.md"
API_INDEX = "api/index.md"
BENCHMARKS = "benchmarks.md"
MATHJAX_DEST = "assets/mathjax"
# The parts of MathJax's es5 build the pages use: the TeX-to-CommonHTML bundle, the TeX
# extensions it autoloads (e.g. \boldsymbol), its fonts, and the menu/accessibility parts
# that it loads on demand.
MATHJAX_PARTS = ("tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y")
# Modules that are not API: the ``python -m`` entry point.
API_SKIP = {"__main__"}


def _repo(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _notebooks(repo: Path) -> list[Path]:
    """The solution notebooks, in course order (their names start with the chapter number)."""
    return sorted((repo / "tutorials").glob("*.ipynb"))


def _modules(repo: Path) -> list[str]:
    """Dotted names of every module of the package, in a stable order, packages' ``__init__`` excluded."""
    root = repo / PACKAGE
    names = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(repo).with_suffix("")
        if path.name == "__init__.py" or path.stem in API_SKIP or "__pycache__" in rel.parts:
            continue
        names.append(".".join(rel.parts))
    return names


def _packages(repo: Path) -> list[str]:
    """Dotted names of the package's subpackages whose ``__init__`` has a docstring (their overviews)."""
    root = repo / PACKAGE
    return [
        ".".join(init.parent.relative_to(repo).parts)
        for init in sorted(root.glob("*/__init__.py"))
        if "__pycache__" not in init.parts and _summary(init)
    ]


def _package_uri(package: str) -> str:
    # cnf_teach.dequantization -> api/dequantization/index.md
    return "api/" + "/".join(package.split(".")[1:]) + "/index.md"


def _summary(path: Path) -> str:
    """First line of a module's docstring, read without importing it."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except SyntaxError:
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def _api_uri(module: str) -> str:
    # cnf_teach.flows.coupling -> api/flows/coupling.md
    return "api/" + "/".join(module.split(".")[1:]) + ".md"


def _find_section(items: list[Any], anchor: str) -> list[Any] | None:
    """The nav list that contains the page ``anchor`` (searched depth-first)."""
    for item in items:
        if item == anchor:
            return items
        children = list(item.values())[0] if isinstance(item, dict) else None
        if isinstance(children, list):
            found = _find_section(children, anchor)
            if found is not None:
                return found
    return None


def _mathjax_root() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("mathjax")
    root = Path(spec.origin).parent / "static" / "mathjax" / "es5" if spec and spec.origin else None
    if root is None or not (root / "tex-chtml.js").is_file():
        raise PluginError(
            "MathJax not found: the site serves its own copy from the 'django-static-mathjax' package; "
            "install the docs extra with: pip install -e '.[docs]'"
        )
    return root


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    repo = _repo(config)
    nav = config.nav or []
    tutorials = _find_section(nav, TUTORIALS_INDEX)
    if tutorials is None:
        raise PluginError(f"mkdocs.yml: the nav needs a section holding {TUTORIALS_INDEX}")
    tutorials.extend(f"tutorials/{nb.name}" for nb in _notebooks(repo))
    api = _find_section(nav, API_INDEX)
    if api is None:
        raise PluginError(f"mkdocs.yml: the nav needs a section holding {API_INDEX}")
    # The benchmarks page is written by the benchmark scripts' authors: listed once it exists.
    if (Path(config.docs_dir) / BENCHMARKS).is_file() and _find_section(nav, BENCHMARKS) is None:
        at = next(
            (i for i, item in enumerate(nav) if isinstance(item, dict) and _find_section([item], API_INDEX)), len(nav)
        )
        nav.insert(at, {"Benchmarks": BENCHMARKS})
    groups: dict[str, list[Any]] = {}
    overviews = set(_packages(repo))
    for module in _modules(repo):
        parts = module.split(".")
        if len(parts) == 2:  # top-level module: its own entry
            api.append({parts[1]: _api_uri(module)})
        else:  # a subpackage's module: under the subpackage's heading
            group = groups.setdefault(parts[1], [])
            if not group:
                api.append({parts[1]: group})
                if f"{PACKAGE}.{parts[1]}" in overviews:  # the section's own page (navigation.indexes)
                    group.append(_package_uri(f"{PACKAGE}.{parts[1]}"))
            group.append({".".join(parts[2:]): _api_uri(module)})
    return config


def _check_notebook(path: Path) -> None:
    """Warn about what ``allow_errors: false`` and ``execute: false`` together would let through."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                log.warning(
                    "%s: code cell %d has an error output (%s); fix it and re-execute", path.name, i, out.get("ename")
                )
    if code and all(c.get("execution_count") is None for c in code):
        log.warning("%s is committed unexecuted: execute it so that the site shows its outputs", path.name)


@event_priority(100)  # before mkdocs-jupyter wraps the notebooks into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    repo = _repo(config)
    for nb in _notebooks(repo):
        _check_notebook(nb)
        files.append(File(f"tutorials/{nb.name}", str(repo), config.site_dir, config.use_directory_urls))
        student = repo / "tutorials" / "student" / nb.name
        if student.is_file():
            # A static download beside the page: tutorials/<stem>/student/<name>.ipynb
            dest = (
                f"tutorials/{nb.stem}/student/{nb.name}"
                if config.use_directory_urls
                else f"tutorials/student/{nb.name}"
            )
            files.append(File.generated(config, dest, abs_src_path=str(student)))

    modules = _modules(repo)
    rows = []
    packages = set(_packages(repo))
    for module in modules:
        package = module.rsplit(".", 1)[0]
        if package in packages:  # first module of a subpackage: its overview first
            packages.remove(package)
            uri = _package_uri(package)
            summary = _summary(repo / Path(*package.split(".")) / "__init__.py").replace("|", "\\|")
            rows.append(f"| [`{package}`]({uri.removeprefix('api/')}) | {summary} |")
            # The package's docstring only: its members have their own pages.
            files.append(File.generated(config, uri, content=f"::: {package}\n    options:\n      members: false\n"))
        uri = _api_uri(module)
        src = repo / Path(*module.split(".")).with_suffix(".py")
        summary = _summary(src).replace("|", "\\|")
        rows.append(f"| [`{module}`]({uri.removeprefix('api/')}) | {summary} |")
        files.append(File.generated(config, uri, content=f"::: {module}\n"))  # its heading is the title
    index = (
        "# API reference\n\n"
        "Generated from the docstrings, one page per module, in the order a learner meets them in\n"
        "the package. Shapes are written `[B, C, H, W]`; log-densities are in nats unless a name\n"
        "says bits.\n\n"
        "| Module | What it holds |\n| --- | --- |\n" + "\n".join(rows) + "\n"
    )
    files.append(File.generated(config, API_INDEX, content=index))

    root = _mathjax_root()
    for part in MATHJAX_PARTS:
        src = root / part
        for path in [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()):
            uri = f"{MATHJAX_DEST}/{path.relative_to(root).as_posix()}"
            files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _notebook_title(path: Path) -> str:
    """The first ``# `` heading of the notebook's markdown cells (what mkdocs-jupyter shows as title)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = "".join(cell.get("source", []))
        for line in source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return path.stem.replace("_", " ")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace ``<!-- notebooks -->`` on the tutorials index by a list of the notebooks that exist."""
    if page.file.src_uri != TUTORIALS_INDEX or "<!-- notebooks -->" not in markdown:
        return markdown
    notebooks = _notebooks(_repo(config))
    items = [f"- [{_notebook_title(nb)}]({nb.name})" for nb in notebooks]  # titles carry their number
    return markdown.replace("<!-- notebooks -->", "\n".join(items) or "*No notebook yet.*")


# Scripts that nbconvert's lab template puts in every notebook: MathJax 2 (and its
# configuration) and RequireJS from cdnjs, and a mermaid loader importing from cdnjs.
_CDN_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_MATHJAX2_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MATHJAX2_CONFIG_BARE = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
_MERMAID = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>", re.S)


def _download_box(page: Page, config: MkDocsConfig) -> str:
    name = Path(page.file.abs_src_path).name
    links = [f'<a href="{html.escape(name)}" download>the notebook with solutions</a>']
    student = Path(page.file.abs_src_path).parent / "student" / name
    if student.is_file():
        href = f"student/{name}"  # beside the page, with or without directory URLs (see on_files)
        links.append(f'<a href="{html.escape(href)}" download>the student version</a> (exercises to fill in)')
    return (
        '<div class="admonition tip cnf-download"><p class="admonition-title">Run it yourself</p>'
        f"<p>Download {' or '.join(links)}, or open every tutorial with <code>make lab</code>.</p></div>"
    )


# A Sphinx role as Markdown renders it: ":class:<code>~pkg.Name</code>".
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):<code>(~?)([\w.]+)(?:\(\))?</code>")


def _page_module(src_uri: str) -> tuple[str, bool]:
    """The page's module and whether it is a package's overview.

    ``api/engine/trainer.md`` -> ``("cnf_teach.engine.trainer", False)``;
    ``api/flows/index.md`` -> ``("cnf_teach.flows", True)``.
    """
    parts = src_uri.removeprefix("api/").removesuffix(".md").split("/")
    if parts[-1] == "index":
        return ".".join([PACKAGE, *parts[:-1]]), True
    return ".".join([PACKAGE, *parts]), False


def _role_links(html_text: str, module: str, is_package: bool) -> str:
    """Replace each role by an optional autoref: a link if the target is rendered, else its name as code."""
    package = module if is_package else module.rsplit(".", 1)[0]

    def link(match: re.Match) -> str:
        short, target = match.group(1) == "~", match.group(2)
        slug = ""
        if target.startswith("."):  # relative, as in an import: .evaluation.ShardedEval
            dots = len(target) - len(target.lstrip("."))
            base = package.rsplit(".", dots - 1)[0] if dots > 1 else package
            identifier = f"{base}.{target.lstrip('.')}"
        elif target.split(".")[0] == PACKAGE:
            identifier = target
        else:  # a name of this module, else of its package
            identifier = f"{module}.{target}"
            slug = f' slug="{html.escape(f"{package}.{target}")}"'
        shown = target.lstrip(".").rsplit(".", 1)[-1] if short else target.lstrip(".")
        code = f"<code>{html.escape(shown)}</code>"
        return f'<autoref identifier="{html.escape(identifier)}"{slug} optional>{code}</autoref>'

    return _ROLE.sub(link, html_text)


def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri == API_INDEX:  # the modules' summaries: names are resolved from the package
        return _role_links(html_text, PACKAGE, True)
    if page.file.src_uri.startswith("api/"):
        return _role_links(html_text, *_page_module(page.file.src_uri))
    if not page.file.src_uri.endswith(".ipynb"):
        return html_text
    html_text = _MATHJAX2_CONFIG.sub("", html_text)
    html_text = _MATHJAX2_CONFIG_BARE.sub("", html_text)
    html_text = _CDN_SCRIPT.sub("", html_text)
    html_text = _MERMAID.sub("", html_text)
    # Search: index the cells, not their prompts, copy buttons or heading anchors ("In [7]:", "Copied!", "¶").
    html_text = html_text.replace('class="anchor-link"', 'class="headerlink"')
    html_text = re.sub(
        r'<div class="(jp-InputPrompt|jp-OutputPrompt|zeroclipboard-container)',
        r'<div data-search-exclude class="\1',
        html_text,
    )
    box = _download_box(page, config)
    head = re.search(r"</h1>", html_text)
    return html_text[: head.end()] + box + html_text[head.end() :] if head else box + html_text


# What makes a browser fetch another host when the page opens (links to click are fine).
_EXTERNAL_LOAD = re.compile(
    r"<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc=\"(?:https?:)?//|"
    r"<link\b[^>]*\bhref=\"(?:https?:)?//|@import\s+url\(\s*['\"]?(?:https?:)?//|"
    r"url\(\s*['\"]?https?://(?!www\.w3\.org/)",
    re.I,
)


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    hit = _EXTERNAL_LOAD.search(output)
    if hit:
        start = max(hit.start() - 40, 0)
        log.warning("%s would load from another host: ...%s...", page.file.src_uri, output[start : hit.end() + 80])
    return output
