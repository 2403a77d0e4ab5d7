"""Every graded part of every notebook reaches the learner with its question and its points.

nbgrader's ``ClearSolutions`` replaces a manually graded answer cell (a markdown cell with ``grade`` and
``solution`` set) by ``YOUR ANSWER HERE``: whatever the solution notebook wrote inside that cell, the
question included, never reaches the student. So, in every **student** notebook ``tutorials/student/0*.ipynb``:

- each manually graded cell is preceded by a markdown cell that states its question, labelled
  ``Question N (..., P points)`` with the cell's own points, followed by the question itself;
- the manually graded cell holds nothing but nbgrader's stub, and its solution (in the solution notebook)
  does not open with a question of its own.

And in every notebook, each exercise heading ``Exercise N (P points)`` states the points of the autograded test
cells that follow its answer cell. Failures name the notebook and the cell.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import REPO

TUTORIALS = REPO / "tutorials"
STUDENT = TUTORIALS / "student"
NOTEBOOKS = sorted(TUTORIALS.glob("0*.ipynb"))
STUB = "YOUR ANSWER HERE"
# "Question 4 (written, 2 points)", "**Question A (2 points).**", "### Written question (2 points)"
QUESTION = re.compile(
    r"[Qq]uestion(?:\s+(?P<label>[0-9A-Z]\w*))?\s*\((?:[^()]*?,\s*)?(?P<points>\d+(?:\.\d+)?)\s+points?\)"
)
EXERCISE = re.compile(r"^#+\s*Exercise\s+(?P<label>\w+)(?:\s*\((?P<points>\d+(?:\.\d+)?)\s+points?\))?", re.MULTILINE)
MIN_QUESTION_WORDS = 12  # a label alone ("Answer below") is not a question


def _meta(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_written(cell: nbformat.NotebookNode) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "markdown" and bool(meta.get("grade")) and bool(meta.get("solution"))


def _asks(text: str) -> bool:
    """Whether a solution cell opens with a question (its first paragraph ends in '?') or labels one."""
    first = text.strip().split("\n\n")[0].strip()
    return first.rstrip("*_ ").endswith("?") or QUESTION.search(text) is not None


def _points(value: float) -> str:
    return f"{value:g}"


def test_every_notebook_has_a_student_version() -> None:
    assert NOTEBOOKS, "no solution notebooks in tutorials/"
    missing = [p.name for p in NOTEBOOKS if not (STUDENT / p.name).exists()]
    assert not missing, f"no student version of {missing}: run `make student`"


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_written_questions_precede_their_answer_cells(name: str) -> None:
    student = nbformat.read(STUDENT / name, as_version=4)
    solution = nbformat.read(TUTORIALS / name, as_version=4)
    problems = []
    for i, cell in enumerate(student.cells):
        if not _is_written(cell):
            continue
        grade_id = _meta(cell).get("grade_id", "?")
        where = f"student/{name} cell {i} ({grade_id})"
        points = float(_meta(cell).get("points", 0))
        if cell.source.strip() != STUB:
            problems.append(f"{where}: the student's answer cell should hold only {STUB!r}, not {cell.source[:80]!r}")
        # The solution notebook: the answer cell answers, it does not ask (whatever it asks is lost to students).
        sol = next((c for c in solution.cells if _meta(c).get("grade_id") == grade_id), None)
        if sol is None:
            problems.append(f"{where}: no cell {grade_id!r} in the solution notebook")
        elif _asks(sol.source):
            problems.append(
                f"{name} cell {solution.cells.index(sol)} ({grade_id}): the solution cell opens with a question "
                f"({sol.source.strip()[:100]!r}); move it into the markdown cell before, or students never see it"
            )
        before = student.cells[i - 1] if i > 0 else None
        if before is None or before.cell_type != "markdown":
            problems.append(f"{where}: no markdown cell with its question right before it")
            continue
        labels = list(QUESTION.finditer(before.source))
        if not labels:
            problems.append(
                f"{where}: the cell before it (cell {i - 1}) states no 'Question N (P points)'"
                " or 'Written question (P points)': "
                f"the learner sees only {before.source.strip()[:120]!r} and then {STUB!r}"
            )
            continue
        label = labels[-1]  # the question nearest to the answer cell is the one it answers
        if float(label["points"]) != points:
            problems.append(
                f"{where}: its question says {label['points']} points, its nbgrader metadata {_points(points)}"
            )
        words = len(before.source[label.end() :].split())
        if words < MIN_QUESTION_WORDS:
            problems.append(f"{where}: after {label.group(0)!r} come only {words} words: where is the question?")
    assert not problems, "\n".join(problems)


def _exercises(nb: nbformat.NotebookNode) -> list[tuple[int, str, float]]:
    """``(answer cell index, grade_id, points of its autograded test cells)`` per code exercise."""
    out: list[tuple[int, str, float]] = []
    for i, cell in enumerate(nb.cells):
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            out.append((i, meta["grade_id"], 0.0))
        elif cell.cell_type == "code" and meta.get("grade") and out:
            index, grade_id, points = out[-1]
            out[-1] = (index, grade_id, points + float(meta.get("points", 0)))
        elif _is_written(cell) and out:
            out.append((i, "", 0.0))  # a written question ends the exercise before it
    return [e for e in out if e[1]]


@pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])
def test_exercise_headings_state_their_points(name: str) -> None:
    nb = nbformat.read(TUTORIALS / name, as_version=4)
    problems = []
    for index, grade_id, points in _exercises(nb):
        heading = None
        for j in range(index - 1, -1, -1):
            cell = nb.cells[j]
            found = list(EXERCISE.finditer(cell.source)) if cell.cell_type == "markdown" else []
            if found:
                heading = (j, found[-1])
                break
        where = f"{name} cell {index} ({grade_id})"
        if heading is None:
            problems.append(f"{where}: no '### Exercise N (P points)' heading before this answer cell")
            continue
        j, match = heading
        if match["points"] is None:
            problems.append(f"{where}: the heading in cell {j} ({match.group(0)!r}) gives no points")
        elif float(match["points"]) != points:
            problems.append(
                f"{where}: the heading in cell {j} says {match['points']} points, "
                f"its test cells carry {_points(points)}"
            )
    assert not problems, "\n".join(problems)


def test_question_pattern_reads_the_course_formats() -> None:
    # The two forms the notebooks use, so that a typo in the pattern cannot pass every notebook by finding nothing.
    assert QUESTION.search("### Question 4 (written, 2 points): the sign")["points"] == "2"
    assert QUESTION.search("**Question A (3 points).** A network")["label"] == "A"
    assert QUESTION.search("### Written question (2 points): why a normaliser")["points"] == "2"
    assert QUESTION.search("## 8 · A written question") is None
    assert EXERCISE.search("### Exercise 2 (4 points): a conditional affine coupling")["points"] == "4"
    assert EXERCISE.search("### Exercise 3: the inverse")["points"] is None
