"""The package's layout keeps its promise: a house of floors, imports only downward, no circles.

Floors, from the ground up (a module may import its own floor and the floors below it):

0. concepts: flows, distributions, dequantization, baselines, nets, metrics, data, utils,
   errors, progress;
1. the engine;
2. the applications: toy, super_resolution, vessels;
3. the shipped models, pretrained (it builds the applications' models);
4. the commands and the CLI: commands, cli, __main__.

Checked on the source (every ``import`` and ``from ... import`` statement, at any depth,
including lazy imports inside functions and imports under ``if TYPE_CHECKING``), module by
module: no import runs up a floor, the modules' import graph has no circle, and no module
imports another module's private (``_underscore``) names.

One kind of module stands outside the rules, listed here by name:

- :data:`SHIMS`: the old import paths of modules that moved up a floor (the commands), kept
  working for a release with a ``DeprecationWarning``; nothing in the package imports them.
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnf_teach"

#: Top-level names below ``cnf_teach`` by floor (0 = the ground floor).
FLOORS: dict[str, int] = {
    **dict.fromkeys(
        ("flows", "distributions", "dequantization", "baselines", "nets", "metrics", "data", "utils", "errors"), 0
    ),
    "progress": 0,
    "engine": 1,
    **dict.fromkeys(("toy", "super_resolution", "vessels"), 2),
    "pretrained": 3,
    **dict.fromkeys(("commands", "cli", "__main__"), 4),
}

#: Old paths of the command modules, now in ``cnf_teach.commands``: deprecated re-exports.
SHIMS = {
    "cnf_teach.engine.command": "cnf_teach.commands.convert",
    "cnf_teach.toy.command": "cnf_teach.commands.toy",
    "cnf_teach.super_resolution.command": "cnf_teach.commands.sr",
    "cnf_teach.vessels.command": "cnf_teach.commands.seg",
}

#: The last circle removed: the retina's settings now live apart from its vessel tree (retina_config).
RETINA_PAIR = frozenset({"cnf_teach.data.synthetic_retina", "cnf_teach.data.vessel_tree"})


def _name(path: Path) -> str:
    """``cnf_teach/a/b.py`` -> ``cnf_teach.a.b``; ``cnf_teach/a/__init__.py`` -> ``cnf_teach.a``."""
    parts = ["cnf_teach", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _from_module(node: ast.ImportFrom, name: str) -> str | None:
    """The dotted module a ``from ... import`` statement of module ``name`` imports from (``None``: outside)."""
    if node.level == 0:
        base = (node.module or "").split(".")
    else:
        here = name.split(".")
        package = here if _is_package(name) else here[:-1]
        up = node.level - 1  # `from .` stays in the file's own package
        if up >= len(package):
            return None
        base = package[: len(package) - up] + (node.module.split(".") if node.module else [])
    return ".".join(base) if base[0] == "cnf_teach" else None


def _imports(path: Path) -> list[tuple[str, list[ast.alias]]]:
    """``(module, names)`` of every import statement of ``path`` that reaches into ``cnf_teach``.

    ``module`` is the dotted module imported from (relative imports resolved); ``names`` the
    names taken from it (empty for ``import a.b``).
    """
    name = _name(path)
    found: list[tuple[str, list[ast.alias]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "cnf_teach"]
        elif isinstance(node, ast.ImportFrom):
            module = _from_module(node, name)
            if module is not None:
                found.append((module, list(node.names)))
    return found


def _edges(name: str) -> set[str]:
    """The package's modules that module ``name`` imports (``from pkg import mod`` names ``pkg.mod``)."""
    out: set[str] = set()
    for module, names in _imports(MODULES[name]):
        targets = [f"{module}.{a.name}" for a in names if f"{module}.{a.name}" in MODULES]
        if len(targets) < max(1, len(names)):  # `import module`, or names that are objects of `module`
            targets.append(module)
        out.update(t for t in targets if t in MODULES and t != name)
    return out


def _floor(name: str) -> int | None:
    parts = name.split(".")
    return FLOORS.get(parts[1]) if len(parts) > 1 else None  # the root package is no floor: the front door


GRAPH: dict[str, set[str]] = {name: _edges(name) for name in MODULES if name not in SHIMS}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _private_imports(name: str) -> list[str]:
    """``module._name`` for every private name module ``name`` imports from another module.

    A package's ``__init__`` may re-export its own submodules' private names under the same
    name (``from .x import _y as _y``), which keeps an old import path working; nothing else may.
    """
    bad = []
    for module, names in _imports(MODULES[name]):
        for alias in names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if not private or f"{module}.{alias.name}" in MODULES:
                continue
            own_reexport = _is_package(name) and module.startswith(name + ".") and alias.asname == alias.name
            if not own_reexport:
                bad.append(f"{module}.{alias.name}")
    return bad


def _private_imports_all() -> dict[str, list[str]]:
    out = {}
    for name in MODULES:
        if name in SHIMS:
            continue
        bad = _private_imports(name)
        if bad:
            out[name] = bad
    return out


# --- the rules ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GRAPH), ids=lambda n: n.removeprefix("cnf_teach."))
def test_imports_run_down_only(name: str) -> None:
    """No module imports a module on a higher floor (its own floor and those below are fine)."""
    floor = _floor(name)
    if floor is None:
        return  # the root package: it re-exports the main classes from every floor
    up = sorted(t for t in GRAPH[name] if (_floor(t) or 0) > floor)
    assert not up, f"{name} (floor {floor}) imports {up} from a higher floor: move it up, or the import down"


def test_no_circles_between_modules() -> None:
    """The modules' import graph has no circle, apart from the one being removed."""
    circles = _circles(GRAPH)
    assert not circles, f"import circles: {circles}; move the shared part into a module both import"


def test_no_module_imports_private_names() -> None:
    """A ``_name`` stays in its module: a module that needs it needs a public name."""
    bad = _private_imports_all()
    assert not bad, f"modules import other modules' private names: {bad}"


def test_the_retina_circle_is_gone() -> None:
    """The vessel tree reads its settings from retina_config, not from the photograph's module."""
    assert RETINA_PAIR not in [set(c) for c in _circles(GRAPH)]
    assert "cnf_teach.data.synthetic_retina" not in GRAPH["cnf_teach.data.vessel_tree"]


def test_shims_are_deprecated_aliases_that_nothing_imports() -> None:
    """Each old path re-exports its new module with a ``DeprecationWarning``; the package uses the new paths."""
    users = sorted(name for name, edges in GRAPH.items() if edges & set(SHIMS))
    assert not users, f"{users} import a deprecated old path; import from cnf_teach.commands"
    for old, new in SHIMS.items():
        importlib.import_module(new)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.reload(importlib.import_module(old))
        assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught), old
        target = importlib.import_module(new)
        for attr in target.__all__:
            assert getattr(module, attr) is getattr(target, attr), f"{old}.{attr}"


# --- the checker itself ------------------------------------------------------------------------
def test_every_module_has_a_floor() -> None:
    unknown = sorted({n.split(".")[1] for n in MODULES if "." in n} - set(FLOORS))
    assert not unknown, f"modules {unknown} have no floor: add them to FLOORS"


def test_the_checker_sees_relative_absolute_and_lazy_imports() -> None:
    """A concept file with each kind of upward import is caught, and a private import too."""
    fake = PACKAGE / "flows" / "_layout_probe.py"
    fake.write_text(
        "from ..engine import Trainer\nimport cnf_teach.vessels\nfrom . import base\n"
        "def f():\n    from ..super_resolution.model import x\n    from .base import _private\n"
    )
    try:
        MODULES["cnf_teach.flows._layout_probe"] = fake
        edges = _edges("cnf_teach.flows._layout_probe")
        assert edges >= {"cnf_teach.engine", "cnf_teach.vessels", "cnf_teach.super_resolution.model"}
        assert "cnf_teach.flows.base" in edges
        assert _private_imports("cnf_teach.flows._layout_probe") == ["cnf_teach.flows.base._private"]
    finally:
        fake.unlink()
        del MODULES["cnf_teach.flows._layout_probe"]


def test_the_checker_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []
