"""The instructor's nbgrader workflow, end to end, on a class of three fake students.

What ``tutorials/README.md`` (and the site's instructor page) tells an instructor to do, run here on
the capstone ``tutorials/08_capstone_colourisation.ipynb`` in fast mode (``CNF_TEACH_FAST=1``):

1. a course directory with ``nbgrader_config.py`` and ``source/<assignment>/``;
2. ``nbgrader db student add`` for three students, ``nbgrader generate_assignment``;
3. three submissions under ``submitted/<student>/<assignment>/``: one correct (the solution's answer
   cells pasted into the released notebook), one with typical mistakes (two wrong answers taken from
   ``tests/tutorials/mistakes_08.py``), one empty (the released notebook untouched);
4. ``nbgrader autograde`` (which executes every submission in a kernel), then the scores are read
   from the gradebook (``nbgrader.api.Gradebook``): full marks, the expected partial score, zero;
5. ``nbgrader generate_feedback`` writes one HTML report per student.

The expected scores are computed from the notebook's own test cells and the mistakes' ``fails``
lists, so the test follows changes to the points. It takes about a minute on one core.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from harness import STUDENT, TUTORIALS, load

nbgrader_api = pytest.importorskip("nbgrader.api", reason="nbgrader is not installed (it comes with the lab extra)")

HERE = Path(__file__).resolve().parent
NOTEBOOK = "08_capstone_colourisation.ipynb"
ASSIGNMENT = "capstone"
STUDENTS = ("correct", "mistaken", "empty")


def _mistakes_module():
    spec = importlib.util.spec_from_file_location("mistakes_08", HERE / "mistakes_08.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader ARGS`` in ``course`` with this interpreter, in fast mode."""
    env = dict(os.environ)
    # nbgrader's database commands call the `alembic` script installed next to the interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(CNF_TEACH_FAST="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # generous: CI machines under load; the whole test takes about a minute on a free core
    )
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _with_answers(released: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the answer cells (code or written) named in ``answers`` filled in."""
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory after generate_assignment, three submissions, autograde and generate_feedback."""
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        'c.CourseDirectory.course_id = "cnf-teach"\n'
        f"c.CourseDirectory.root = {str(root)!r}\n"
        "c.Execute.timeout = 300  # seconds per cell (nbgrader's default of 30 is too short for training cells)\n",
        encoding="utf-8",
    )
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    (source / NOTEBOOK).write_bytes((TUTORIALS / NOTEBOOK).read_bytes())
    for student in STUDENTS:
        _nbgrader(root, "db", "student", "add", student, f"--last-name={student}", "--first-name=Test")
    _nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    released = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)

    solution = nbformat.read(TUTORIALS / NOTEBOOK, as_version=4)
    solutions = {_grade_id(c): c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
    wrong = dict(solutions)
    for mistake in _chosen_mistakes():
        wrong[mistake.answer_id] = mistake.source
    submissions = {"correct": _with_answers(released, solutions), "mistaken": _with_answers(released, wrong)}
    submissions["empty"] = released
    for student, nb in submissions.items():
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / NOTEBOOK)
        (folder / "timestamp.txt").write_text("2024-01-15 12:00:00 UTC", encoding="utf-8")
    _nbgrader(root, "autograde", ASSIGNMENT)
    _nbgrader(root, "generate_feedback", ASSIGNMENT)
    return root


def _chosen_mistakes() -> list:
    """Two typical mistakes in different exercises whose failing cells do not overlap (from mistakes_08.py)."""
    chosen, seen_answers, seen_cells = [], set(), set()
    for mistake in _mistakes_module().MISTAKES:
        cells = set(mistake.fails)
        if mistake.answer_id in seen_answers or cells & seen_cells or {"train-runs", "heldout-bpd"} & cells:
            continue
        chosen.append(mistake)
        seen_answers.add(mistake.answer_id)
        seen_cells |= cells
        if len(chosen) == 2:
            return chosen
    raise AssertionError("mistakes_08.py lacks two mistakes in different exercises with separate failing cells")


def _autograded_points() -> dict[str, float]:
    """``{grade_id: points}`` of the notebook's autograded test cells."""
    return {c.grade_id: c.points for c in load(TUTORIALS / NOTEBOOK).tests}


def _grades(course: Path, student: str) -> dict[str, object]:
    with nbgrader_api.Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(Path(NOTEBOOK).stem, ASSIGNMENT, student)
        return {g.name: (g.auto_score, g.max_score, g.needs_manual_grade, g.cell_type) for g in nb.grades}


def _auto_scores(course: Path, student: str) -> dict[str, float]:
    return {k: v[0] for k, v in _grades(course, student).items() if v[3] == "code"}


def test_correct_submission_gets_full_marks(course: Path) -> None:
    expected = _autograded_points()
    assert _auto_scores(course, "correct") == expected


def test_mistaken_submission_loses_exactly_the_caught_points(course: Path) -> None:
    points = _autograded_points()
    failing = {cell for m in _chosen_mistakes() for cell in m.fails}
    expected = {k: (0.0 if k in failing else p) for k, p in points.items()}
    scores = _auto_scores(course, "mistaken")
    assert scores == expected, f"expected {sum(expected.values())} of {sum(points.values())} points: {expected}"
    assert 0 < sum(scores.values()) < sum(points.values())


def test_empty_submission_scores_zero(course: Path) -> None:
    scores = _auto_scores(course, "empty")
    assert set(scores) == set(_autograded_points())
    assert all(s == 0 for s in scores.values()), scores


def test_written_answers_wait_for_manual_grading(course: Path) -> None:
    """Answered written questions wait for the instructor; untouched ones score 0 (nbgrader's rule)."""
    for student in STUDENTS:
        written = {k: v for k, v in _grades(course, student).items() if v[3] == "markdown"}
        assert written, "the capstone's written questions are not in the gradebook"
        if student == "empty":  # the released text unchanged: nbgrader scores it 0 without asking
            assert all(auto == 0 and not manual for auto, _, manual, _ in written.values()), (student, written)
        else:
            assert all(auto is None and manual for auto, _, manual, _ in written.values()), (student, written)


def test_feedback_is_written_for_every_student(course: Path) -> None:
    for student in STUDENTS:
        html = course / "feedback" / student / ASSIGNMENT / f"{Path(NOTEBOOK).stem}.html"
        assert html.exists(), f"generate_feedback wrote no report for {student}"


def test_release_matches_the_student_version(course: Path) -> None:
    released = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    student = nbformat.read(STUDENT / NOTEBOOK, as_version=4)
    assert [(c.cell_type, c.source) for c in released.cells] == [(c.cell_type, c.source) for c in student.cells]
