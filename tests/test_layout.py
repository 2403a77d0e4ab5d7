"""The package's layout keeps its promise: imports point down only.

Concept modules (flows, distributions, dequantization, baselines, nets, metrics, data, utils)
never import an application (toy, super_resolution, vessels), the engine or the CLI; the engine
never imports an application or the CLI. Checked on the source (every ``import`` and
``from ... import`` statement, at any depth), so lazy imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnf_teach"
CONCEPTS = (
    "flows",
    "distributions",
    "dequantization",
    "baselines",
    "nets",
    "metrics",
    "data",
    "utils",
    "errors",
    "progress",
)
APPLICATIONS = ("toy", "super_resolution", "vessels", "pretrained")
ENGINE = ("engine",)
TOP = ("cli", "__main__")


def _top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(path: Path) -> set[str]:
    """First component below ``cnf_teach`` of every module ``path`` imports from the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "cnf_teach" and len(parts) > 1:
                    found.add(parts[1])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "cnf_teach":
                    continue
                rest = parts[1:]
            else:
                up = node.level - 1  # `from .` stays in the file's own folder
                here = list(path.relative_to(PACKAGE).parts[:-1])
                if up > len(here):
                    continue
                rest = here[: len(here) - up] + ((node.module or "").split(".") if node.module else [])
            if rest and rest[0]:
                found.add(rest[0])
            elif not rest:  # `from .. import x` at the package root: x are the modules
                found.update(a.name for a in node.names)
    return found


def _files(tops: tuple[str, ...]) -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if _top(p) in tops]


@pytest.mark.parametrize("path", _files(CONCEPTS), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_concepts_import_neither_applications_nor_engine(path: Path) -> None:
    bad = _imported(path) & set(APPLICATIONS + ENGINE + TOP)
    assert not bad, f"{path.relative_to(PACKAGE)} is a concept module but imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files(ENGINE), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engine_imports_no_application(path: Path) -> None:
    bad = _imported(path) & set(APPLICATIONS + TOP)
    assert not bad, f"{path.relative_to(PACKAGE)} is part of the engine but imports {sorted(bad)}"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path: Path) -> None:
    """The checker itself: a concept file with each kind of upward import is caught."""
    fake = PACKAGE / "flows" / "_layout_probe.py"
    fake.write_text(
        "from ..engine import Trainer\nimport cnf_teach.vessels\ndef f():\n    from ..super_resolution.model import x\n"
    )
    try:
        assert _imported(fake) >= {"engine", "vessels", "super_resolution"}
    finally:
        fake.unlink()


def test_every_file_is_classified() -> None:
    known = set(CONCEPTS + APPLICATIONS + ENGINE + TOP + ("__init__",))
    unknown = sorted({_top(p) for p in PACKAGE.rglob("*.py")} - known)
    assert not unknown, f"modules {unknown} are neither concepts, applications, engine nor CLI: classify them"
