"""Run a tutorial's graded cells outside Jupyter, with one answer replaced by a wrong one.

A tutorial notebook has three kinds of code cells that matter for grading (see
``tutorials/README.md``):

- *grading-context* cells (tag ``grading-context``): imports, seeds and small helpers;
- *answer* cells (nbgrader ``solution: true``): the learner's code, one function each;
- *test* cells (nbgrader ``grade: true``): autograded ``assert``s with points.

:func:`run_graded` executes, in a fresh namespace and in notebook order, every context cell, every
answer cell and every test cell (skipping all other cells), and reports which test cells failed. This is
what nbgrader's ``validate`` does with a real kernel, minus the expensive cells in between, which
the test cells must not need. A :class:`Mistake` is a wrong answer together with the test cells
that must catch it; a :class:`Variant` is a correct answer written differently from the solution
(another dtype, an equivalent formulation), which must pass every test cell;
``tests/tutorials/mistakes_NN.py`` lists both per notebook (``MISTAKES``, ``CORRECT_VARIANTS``).

Markdown cells are never executed: nbgrader's manually graded written answers (markdown cells
with ``grade`` and ``solution`` set) take no part in :func:`run_graded`; :func:`written_answers`
lists them.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures in grading-context cells must never open a window

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import torch  # noqa: E402

__all__ = [
    "Mistake",
    "Variant",
    "Notebook",
    "GradedCell",
    "load",
    "run_graded",
    "written_answers",
    "TUTORIALS",
    "STUDENT",
]

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "tutorials"
STUDENT = TUTORIALS / "student"
CONTEXT_TAG = "grading-context"


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer to one exercise, and the test cells that must catch it.

    Args:
        answer_id: ``grade_id`` of the answer cell the wrong source replaces.
        source: The wrong answer: the whole source of the answer cell.
        fails: ``grade_id`` s of the test cells that must fail on it; every other test cell must pass.
        why: The mistake in words (shown in the test id and in failures).
    """

    answer_id: str
    source: str
    fails: list[str] = field(default_factory=list)
    why: str = ""


@dataclass(frozen=True)
class Variant:
    """A correct answer to one exercise, written differently from the solution: it passes every test cell.

    Args:
        answer_id: ``grade_id`` of the answer cell the source replaces.
        source: The whole source of the answer cell.
        why: What differs from the solution (shown in the test id and in failures).
    """

    answer_id: str
    source: str
    why: str = ""


@dataclass(frozen=True)
class GradedCell:
    """One code cell that takes part in grading."""

    index: int  # position in the notebook
    kind: str  # "context", "answer" or "test"
    grade_id: str  # nbgrader's grade_id ("" for context cells)
    source: str
    points: float = 0.0


@dataclass(frozen=True)
class Notebook:
    """The grading-relevant view of a notebook."""

    path: Path
    nb: nbformat.NotebookNode
    cells: list[GradedCell]

    @property
    def answers(self) -> list[GradedCell]:
        return [c for c in self.cells if c.kind == "answer"]

    @property
    def tests(self) -> list[GradedCell]:
        return [c for c in self.cells if c.kind == "test"]

    @property
    def context(self) -> list[GradedCell]:
        return [c for c in self.cells if c.kind == "context"]


def load(path: Path) -> Notebook:
    """Read a notebook and sort its code cells into context, answer and test cells.

    Raises:
        ValueError: A cell is both an answer and a test, or is a context cell with nbgrader metadata.
    """
    nb = nbformat.read(path, as_version=4)
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        tags = cell.metadata.get("tags", [])
        is_answer, is_test = bool(meta.get("solution")), bool(meta.get("grade"))
        if is_answer and is_test:
            raise ValueError(f"{path.name} cell {i}: an answer cell may not be graded itself; split it in two")
        if CONTEXT_TAG in tags:
            if is_answer or is_test:
                raise ValueError(f"{path.name} cell {i}: a {CONTEXT_TAG} cell cannot be an nbgrader cell")
            cells.append(GradedCell(i, "context", "", cell.source))
        elif is_answer:
            cells.append(GradedCell(i, "answer", meta["grade_id"], cell.source))
        elif is_test:
            cells.append(GradedCell(i, "test", meta["grade_id"], cell.source, float(meta.get("points", 0))))
    return Notebook(path, nb, cells)


def written_answers(notebook: Notebook) -> list[tuple[int, str, float]]:
    """The manually graded written answers: ``(cell index, grade_id, points)`` of markdown cells
    that nbgrader marks both ``grade`` and ``solution``."""
    out = []
    for i, cell in enumerate(notebook.nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            out.append((i, meta.get("grade_id", ""), float(meta.get("points", 0))))
    return out


_MAGIC = re.compile(r"^\s*[%!]", re.MULTILINE)


@contextlib.contextmanager
def _notebook_environment(folder: Path) -> Iterator[None]:
    """Run like a kernel started next to the notebook, in fast mode."""
    old_cwd, old_fast = Path.cwd(), os.environ.get("CNF_TEACH_FAST")
    # A notebook may change these; the rest of the test session must not see it.
    old_dtype, old_threads = torch.get_default_dtype(), torch.get_num_threads()
    os.chdir(folder)
    os.environ["CNF_TEACH_FAST"] = "1"
    try:
        yield
    finally:
        os.chdir(old_cwd)
        if old_fast is None:
            os.environ.pop("CNF_TEACH_FAST", None)
        else:
            os.environ["CNF_TEACH_FAST"] = old_fast
        torch.set_default_dtype(old_dtype)
        torch.set_num_threads(old_threads)
        plt.close("all")


def _exec(cell: GradedCell, ns: dict, name: str) -> None:
    if _MAGIC.search(cell.source):
        raise ValueError(f"{name} cell {cell.index} uses IPython magics or shell escapes; graded cells must be Python")
    exec(compile(cell.source, f"<{name} cell {cell.index} {cell.grade_id}>", "exec"), ns)  # noqa: S102


def run_graded(notebook: Notebook, replace: dict[str, str] | None = None) -> dict[str, BaseException | None]:
    """Execute the graded cells of ``notebook`` in a fresh namespace.

    Args:
        notebook: From :func:`load`.
        replace: ``{answer grade_id: source}``: answers to swap in before running.

    Returns:
        ``{test grade_id: None if it passed, else the exception it raised}``, in notebook order.

    Raises:
        KeyError: ``replace`` names an answer cell the notebook lacks.
        Exception: A context cell failed (that is a broken notebook, not a wrong answer).
    """
    replace = dict(replace or {})
    unknown = set(replace) - {c.grade_id for c in notebook.answers}
    if unknown:
        raise KeyError(f"{notebook.path.name} has no answer cell(s) {sorted(unknown)}")
    name = notebook.path.name
    ns: dict = {"__name__": "__main__"}
    results: dict[str, BaseException | None] = {}
    with _notebook_environment(notebook.path.parent):
        for cell in notebook.cells:  # in notebook order, as a learner runs them
            if cell.kind == "context":
                _exec(cell, ns, name)
            elif cell.kind == "answer":
                cell = GradedCell(cell.index, cell.kind, cell.grade_id, replace.get(cell.grade_id, cell.source))
                try:
                    _exec(cell, ns, name)
                except Exception:  # noqa: BLE001 - a broken answer makes its tests fail, as in Jupyter
                    pass
            else:
                try:
                    _exec(cell, ns, name)
                    results[cell.grade_id] = None
                except Exception as err:  # noqa: BLE001 - any exception fails a test cell, as in nbgrader
                    results[cell.grade_id] = err
    return results
