"""The instructor's nbgrader workflow, end to end, on every chapter, with a class of three fake students.

What ``docs/instructors.md`` tells an instructor to do, run here in fast mode (``CNF_TEACH_FAST=1``):

1. ``make course``'s tool (``tutorials/tools/make_course.py``) builds a course folder: its
   ``nbgrader_config.py``, ``source/`` and, by ``nbgrader generate_assignment``, ``release/`` of all eight
   chapters;
2. ``nbgrader db student add`` for three students, who hand in every chapter: one correct (the solution's
   answer cells pasted into the released notebook), one with typical mistakes (two wrong answers to
   different exercises, taken from ``tests/tutorials/mistakes_NN.py``), one empty (no answer written).
   Only the correct student hands in the whole notebook. The other two empty the code of the ungraded
   cells (demonstrations, figures, training runs: unlocked cells that a student may change and that
   nbgrader does not grade), so that their autograde runs only what is graded: the grading-context, answer
   and test cells, which the notebooks' rules keep independent of the cells in between (``harness.py``).
   That keeps the module to a few minutes; the correct submission still runs every cell under nbgrader;
3. ``nbgrader autograde`` of every assignment (which executes every submission in a kernel), each in its
   own copy of the course folder (as the instructor's guide suggests, and two chapters at a time: CI has
   two cores), then the scores are read from that copy's gradebook (``nbgrader.api.Gradebook``): full
   marks, the expected partial score, zero; written answers wait for the instructor;
4. ``nbgrader generate_feedback`` writes one HTML report per student and chapter.

The expected scores come from the notebooks' own test cells and the mistakes' ``fails`` lists, so the
test follows changes to the points. A last test checks that Validate on a student's machine, outside this
repository, finds the timeouts released with the assignment.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import nbformat
import pytest
from harness import CONTEXT_TAG, STUDENT, TUTORIALS, Mistake, load

nbgrader_api = pytest.importorskip("nbgrader.api", reason="nbgrader is not installed (it comes with the lab extra)")

HERE = Path(__file__).resolve().parent
STUDENTS = ("correct", "mistaken", "empty")
NOTEBOOKS = sorted(TUTORIALS.glob("0*.ipynb"))
WORKERS = 2  # chapters autograded at a time (CI has two cores; each autograde is one kernel at a time)


def _module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_course = _module("make_course", TUTORIALS / "tools" / "make_course.py")
ASSIGNMENTS = make_course.assignments()  # {assignment: solution notebook}, one per chapter
chapter_param = pytest.mark.parametrize("assignment", list(ASSIGNMENTS))


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
        timeout=3600,  # generous: CI machines under load
    )
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc


def _grade_id(cell) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id", "")


def _with_answers(
    released: nbformat.NotebookNode, answers: dict[str, str], graded_only: bool = False
) -> nbformat.NotebookNode:
    """The released notebook with the answer cells (code or written) named in ``answers`` filled in; with
    ``graded_only``, the code of every cell that is neither an nbgrader cell nor a grading-context cell
    emptied."""
    nb = copy.deepcopy(released)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and _grade_id(cell) in answers:
            cell.source = answers[_grade_id(cell)]
        ungraded = not cell.metadata.get("nbgrader") and CONTEXT_TAG not in cell.metadata.get("tags", [])
        if graded_only and cell.cell_type == "code" and ungraded:
            cell.source = ""
    return nb


@cache
def chosen_mistakes(assignment: str) -> tuple[Mistake, ...]:
    """Two typical mistakes of a chapter, in different exercises, whose failing cells do not overlap."""
    chapter = assignment[:2]
    mistakes = _module(f"mistakes_{chapter}", HERE / f"mistakes_{chapter}.py").MISTAKES
    chosen, seen_answers, seen_cells = [], set(), set()
    for mistake in mistakes:
        cells = set(mistake.fails)
        if mistake.answer_id in seen_answers or cells & seen_cells:
            continue
        chosen.append(mistake)
        seen_answers.add(mistake.answer_id)
        seen_cells |= cells
        if len(chosen) == 2:
            return tuple(chosen)
    raise AssertionError(f"mistakes_{chapter}.py lacks two mistakes in different exercises with separate failing cells")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course folder after make_course, three submissions per chapter, autograde and generate_feedback."""
    root = tmp_path_factory.mktemp("course")
    assert make_course.build(root) == list(ASSIGNMENTS)
    for student in STUDENTS:
        _nbgrader(root, "db", "student", "add", student, f"--last-name={student}", "--first-name=Test")
    for assignment, notebook in ASSIGNMENTS.items():
        released = nbformat.read(root / "release" / assignment / notebook.name, as_version=4)
        solution = nbformat.read(notebook, as_version=4)
        solutions = {_grade_id(c): c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")}
        wrong = dict(solutions)
        for mistake in chosen_mistakes(assignment):
            wrong[mistake.answer_id] = mistake.source
        submissions = {
            "correct": _with_answers(released, solutions),
            "mistaken": _with_answers(released, wrong, graded_only=True),
            "empty": _with_answers(released, {}, graded_only=True),
        }
        for student, nb in submissions.items():
            folder = root / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / notebook.name)
            (folder / "timestamp.txt").write_text("2024-01-15 12:00:00 UTC", encoding="utf-8")
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda assignment: _autograde_copy(root, assignment), ASSIGNMENTS))
    return root


def _graded(course: Path, assignment: str) -> Path:
    """The copy of the course folder in which ``assignment`` was autograded."""
    return course.parent / f"{course.name}-{assignment}"


def _autograde_copy(course: Path, assignment: str) -> None:
    """Autograde one chapter and write its feedback in a copy of the course folder that holds only that
    chapter's sources and submissions, with its own copy of the gradebook."""
    graded = _graded(course, assignment)
    graded.mkdir()
    for name in ("nbgrader_config.py", "gradebook.db"):  # the config's root is the folder it lies in
        shutil.copyfile(course / name, graded / name)
    shutil.copytree(course / "source" / assignment, graded / "source" / assignment)
    for student in STUDENTS:
        shutil.copytree(course / "submitted" / student / assignment, graded / "submitted" / student / assignment)
    _nbgrader(graded, "autograde", assignment)
    _nbgrader(graded, "generate_feedback", assignment)


def _autograded_points(assignment: str) -> dict[str, float]:
    """``{grade_id: points}`` of the notebook's autograded test cells."""
    return {c.grade_id: c.points for c in load(ASSIGNMENTS[assignment]).tests}


def _grades(course: Path, assignment: str, student: str) -> dict[str, tuple]:
    """``{grade_id: (auto_score, max_score, needs_manual_grade, cell_type)}`` from the gradebook."""
    with nbgrader_api.Gradebook(f"sqlite:///{_graded(course, assignment) / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(ASSIGNMENTS[assignment].stem, assignment, student)
        return {g.name: (g.auto_score, g.max_score, g.needs_manual_grade, g.cell_type) for g in nb.grades}


def _auto_scores(course: Path, assignment: str, student: str) -> dict[str, float]:
    return {k: v[0] for k, v in _grades(course, assignment, student).items() if v[3] == "code"}


def test_every_chapter_is_an_assignment() -> None:
    assert [p.name for p in ASSIGNMENTS.values()] == [p.name for p in NOTEBOOKS]
    assert len(ASSIGNMENTS) == 8, f"the course has eight chapters, found {list(ASSIGNMENTS)}"


@chapter_param
def test_correct_submission_gets_full_marks(course: Path, assignment: str) -> None:
    assert _auto_scores(course, assignment, "correct") == _autograded_points(assignment)


@chapter_param
def test_mistaken_submission_loses_exactly_the_caught_points(course: Path, assignment: str) -> None:
    points = _autograded_points(assignment)
    failing = {cell for m in chosen_mistakes(assignment) for cell in m.fails}
    expected = {k: (0.0 if k in failing else p) for k, p in points.items()}
    scores = _auto_scores(course, assignment, "mistaken")
    assert scores == expected, f"expected {sum(expected.values())} of {sum(points.values())} points: {expected}"
    assert 0 < sum(scores.values()) < sum(points.values())


@chapter_param
def test_empty_submission_scores_zero(course: Path, assignment: str) -> None:
    scores = _auto_scores(course, assignment, "empty")
    assert set(scores) == set(_autograded_points(assignment))
    assert all(s == 0 for s in scores.values()), scores


@chapter_param
def test_written_answers_wait_for_manual_grading(course: Path, assignment: str) -> None:
    """Answered written questions wait for the instructor; untouched ones score 0 (nbgrader's rule)."""
    for student in STUDENTS:
        written = {k: v for k, v in _grades(course, assignment, student).items() if v[3] == "markdown"}
        assert written, f"{assignment}: no written question in the gradebook"
        if student == "empty":  # the released text unchanged: nbgrader scores it 0 without asking
            assert all(auto == 0 and not manual for auto, _, manual, _ in written.values()), (student, written)
        else:
            assert all(auto is None and manual for auto, _, manual, _ in written.values()), (student, written)


@chapter_param
def test_feedback_is_written_for_every_student(course: Path, assignment: str) -> None:
    for student in STUDENTS:
        html = _graded(course, assignment) / "feedback" / student / assignment / f"{ASSIGNMENTS[assignment].stem}.html"
        assert html.exists(), f"generate_feedback wrote no report for {student} on {assignment}"


@chapter_param
def test_release_matches_the_student_version(course: Path, assignment: str) -> None:
    name = ASSIGNMENTS[assignment].name
    released = nbformat.read(course / "release" / assignment / name, as_version=4)
    student = nbformat.read(STUDENT / name, as_version=4)
    assert [(c.cell_type, c.source) for c in released.cells] == [(c.cell_type, c.source) for c in student.cells]


def _timeouts(config) -> tuple[object, object]:
    execute = config.Execute
    return execute.get("timeout"), execute.get("iopub_timeout")


def test_course_config_carries_the_timeouts(course: Path) -> None:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", str(course)).load_config()
    assert _timeouts(config) == (make_course.CELL_TIMEOUT, make_course.IOPUB_TIMEOUT)
    assert Path(config.CourseDirectory.root) == course.resolve()
    assert config.CourseDirectory.course_id == make_course.COURSE_ID
    # The repository's own config (Validate in `make lab`) says the same.
    repo = PyFileConfigLoader("nbgrader_config.py", str(TUTORIALS.parent)).load_config()
    assert _timeouts(repo) == (make_course.CELL_TIMEOUT, make_course.IOPUB_TIMEOUT)


def test_validate_outside_the_repository_finds_the_released_timeouts(
    course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A student fetches a released assignment into their own folder and presses Validate there."""
    from nbgrader.server_extensions.validate_assignment.handlers import ValidateAssignmentHandler

    assignment = next(iter(ASSIGNMENTS))
    home = tmp_path / "student"
    shutil.copytree(course / "release" / assignment, home / assignment)
    empty = tmp_path / "jupyter-config"  # none of this machine's own Jupyter configuration
    empty.mkdir()
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(empty))
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    # The Validate button loads its config as this handler does (the server's folder, then Jupyter's paths).
    monkeypatch.chdir(home / assignment)
    assert _timeouts(ValidateAssignmentHandler.load_config(None)) == (
        make_course.CELL_TIMEOUT,
        make_course.IOPUB_TIMEOUT,
    )
    # Started one folder up, Jupyter does not see it; copied into the config folder, it applies anywhere.
    monkeypatch.chdir(home)
    assert _timeouts(ValidateAssignmentHandler.load_config(None)) == (None, None)
    shutil.copyfile(home / assignment / "nbgrader_config.py", empty / "nbgrader_config.py")
    assert _timeouts(ValidateAssignmentHandler.load_config(None)) == (
        make_course.CELL_TIMEOUT,
        make_course.IOPUB_TIMEOUT,
    )


def test_a_missing_class_list_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = make_course.main(["--course", str(tmp_path / "course"), "--students", str(tmp_path / "class.csv")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--students" in lines[0], lines
    assert not (tmp_path / "course").exists(), "nothing is written when the class list is missing"
