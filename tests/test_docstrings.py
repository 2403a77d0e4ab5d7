"""Every public class of the package carries a runnable ``Examples:`` section (a doctest).

The examples themselves run as doctests (``--doctest-modules`` in ``pyproject.toml``); this test
makes sure a new public class cannot arrive without one. Public means: named in its module's
``__all__`` (or, without ``__all__``, not starting with an underscore).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "cnf_teach"


def _public_classes(path: Path) -> list[tuple[str, str]]:
    tree = ast.parse(path.read_text())
    exported: set[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            exported = {e.value for e in node.value.elts if isinstance(e, ast.Constant)}
    out = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            if exported is None or node.name in exported:
                out.append((node.name, ast.get_docstring(node) or ""))
    return out


def test_every_public_class_has_a_runnable_example() -> None:
    missing = []
    count = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, doc in _public_classes(path):
            count += 1
            # "Examples:" is the Google-style section that the API reference renders as code.
            if "\nExamples:\n" not in doc or ">>>" not in doc:
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{name}")
    assert count > 50  # the walk found the package's classes
    assert not missing, "public classes without a runnable Examples: section: " + ", ".join(missing)
