"""The tutorials' graded exercises check what they claim to check.

For every solution notebook ``tutorials/NN_*.ipynb``:

- the solution passes every graded test cell, and the untouched student version fails every one
  (nbgrader's ``validate`` / ``validate --invert`` semantics);
- every typical mistake in ``tests/tutorials/mistakes_NN.py`` fails exactly the test cells it lists,
  and every correct variant there (``CORRECT_VARIANTS``) passes every test cell;
- every manually graded written answer carries points and has an entry in the instructor's
  rubric ``tutorials/instructor/rubric_NN.md``;
- the notebook has 2-4 exercises, points on every test cell, a run-time statement at the top, and is
  under 2 MB; the student versions are in sync (``make student``).

The graded cells run outside Jupyter (``harness.py``): cheap by the notebooks' own rules.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import pytest
from harness import STUDENT, TUTORIALS, Mistake, Notebook, Variant, load, run_graded, written_answers

HERE = Path(__file__).resolve().parent
CHAPTERS = [f"{n:02d}" for n in range(1, 9)]  # the seven chapters of the course and the capstone (08)
NOTEBOOKS = sorted(TUTORIALS.glob("0*.ipynb"))
MAX_BYTES = 2 * 1024 * 1024


def _chapter(path: Path) -> str:
    return path.name[:2]


@cache
def _solution(name: str) -> Notebook:
    return load(TUTORIALS / name)


@cache
def _solution_results(name: str) -> dict:
    return run_graded(_solution(name))


@cache
def _cases_module(path: Path):
    file = HERE / f"mistakes_{_chapter(path)}.py"
    if not file.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"mistakes_{_chapter(path)}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mistakes(path: Path) -> list[Mistake]:
    module = _cases_module(path)
    return [] if module is None else list(module.MISTAKES)


def _variants(path: Path) -> list[Variant]:
    module = _cases_module(path)
    return [] if module is None else list(getattr(module, "CORRECT_VARIANTS", []))


def _fmt(results: dict) -> str:
    return "\n".join(f"  {k}: {'pass' if v is None else f'{type(v).__name__}: {v}'}" for k, v in results.items())


MISTAKE_CASES = [
    pytest.param(nb.name, i, m, id=f"{_chapter(nb)}-{m.answer_id}-{i}")
    for nb in NOTEBOOKS
    for i, m in enumerate(_mistakes(nb))
]
VARIANT_CASES = [
    pytest.param(nb.name, i, v, id=f"{_chapter(nb)}-{v.answer_id}-ok{i}")
    for nb in NOTEBOOKS
    for i, v in enumerate(_variants(nb))
]
nb_param = pytest.mark.parametrize("name", [p.name for p in NOTEBOOKS])


def test_every_chapter_has_a_notebook_and_mistakes() -> None:
    chapters = {_chapter(p) for p in NOTEBOOKS}
    assert chapters == set(CHAPTERS), f"missing notebooks for chapters {sorted(set(CHAPTERS) - chapters)}"
    missing = [c for c in CHAPTERS if not (HERE / f"mistakes_{c}.py").exists()]
    assert not missing, f"no tests/tutorials/mistakes_NN.py for chapters {missing}"


@nb_param
def test_structure(name: str) -> None:
    nb = _solution(name)
    first = nb.nb.cells[0]
    assert first.cell_type == "markdown" and "Expected run time" in first.source, (
        "the first cell must be markdown stating '**Expected run time:** ...'"
    )
    assert "CNF_TEACH_FAST" in first.source, "the first cell must state the fast-mode run time (CNF_TEACH_FAST=1)"
    assert nb.context, "no code cell is tagged 'grading-context' (imports, seeds for the graded cells)"
    assert 2 <= len(nb.answers) <= 4, f"{len(nb.answers)} exercises: a notebook has 2-4"
    ids = [c.grade_id for c in nb.cells if c.grade_id]
    assert len(ids) == len(set(ids)), f"duplicate grade_ids: {ids}"
    for cell in nb.answers:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, cell.grade_id
    for cell in nb.tests:
        assert cell.points > 0, f"test cell {cell.grade_id} carries no points"
    # Every exercise is followed by at least one of its tests before the next exercise.
    order = [c.kind for c in nb.cells if c.kind != "context"]
    for i, kind in enumerate(order):
        if kind == "answer":
            assert i + 1 < len(order) and order[i + 1] == "test", "each answer cell needs a test cell after it"


@nb_param
def test_solution_passes_every_test_cell(name: str) -> None:
    results = _solution_results(name)
    assert results, f"{name} has no graded test cells"
    failed = {k: v for k, v in results.items() if v is not None}
    assert not failed, f"the solution fails graded cells:\n{_fmt(results)}"


@nb_param
def test_student_version_fails_every_test_cell(name: str) -> None:
    path = STUDENT / name
    assert path.exists(), f"no student version of {name}: run `make student`"
    results = run_graded(load(path))
    assert set(results) == set(_solution_results(name)), "student and solution have different test cells"
    passed = [k for k, v in results.items() if v is None]
    assert not passed, f"the untouched student version passes {passed} (an exercise that grades nothing)"


@nb_param
def test_every_exercise_has_mistakes(name: str) -> None:
    mistakes = _mistakes(TUTORIALS / name)
    covered = {m.answer_id for m in mistakes}
    answers = {c.grade_id for c in _solution(name).answers}
    assert answers <= covered, (
        f"no typical mistake in mistakes_{_chapter(Path(name))}.py for {sorted(answers - covered)}"
    )


@pytest.mark.parametrize(("name", "index", "mistake"), MISTAKE_CASES)
def test_mistake_is_caught(name: str, index: int, mistake: Mistake) -> None:
    nb = _solution(name)
    tests = {c.grade_id for c in nb.tests}
    assert mistake.fails, f"mistake {index} lists no test cell that catches it"
    assert set(mistake.fails) <= tests, f"unknown test cells {sorted(set(mistake.fails) - tests)}"
    results = run_graded(nb, {mistake.answer_id: mistake.source})
    should_fail = set(mistake.fails)
    wrong = [k for k, v in results.items() if (v is None) == (k in should_fail)]
    assert not wrong, f"mistake '{mistake.why}': wrong outcome for {wrong}\n{_fmt(results)}"


@pytest.mark.parametrize(("name", "index", "variant"), VARIANT_CASES)
def test_correct_variant_passes(name: str, index: int, variant: Variant) -> None:
    results = run_graded(_solution(name), {variant.answer_id: variant.source})
    failed = [k for k, v in results.items() if v is not None]
    assert not failed, f"correct variant '{variant.why}' is refused by {failed}\n{_fmt(results)}"


@nb_param
def test_written_answers_have_points_and_rubric(name: str) -> None:
    written = written_answers(_solution(name))
    if not written:
        pytest.skip(f"{name} has no manually graded written answers")
    rubric = TUTORIALS / "instructor" / f"rubric_{_chapter(Path(name))}.md"
    assert rubric.exists(), f"{name} has written answers but no rubric at tutorials/instructor/{rubric.name}"
    text = rubric.read_text(encoding="utf-8")
    for index, grade_id, points in written:
        assert points > 0, f"written answer {grade_id} (cell {index}) carries no points"
        assert grade_id and f"`{grade_id}`" in text, f"written answer {grade_id!r} has no entry in {rubric.name}"


@nb_param
def test_notebook_size(name: str) -> None:
    size = (TUTORIALS / name).stat().st_size
    assert size < MAX_BYTES, f"{name} is {size / 1e6:.2f} MB; keep figures at modest dpi (< 2 MB)"


def test_student_versions_in_sync(capsys) -> None:
    # `make_student.py --check`, in this process (nbgrader takes seconds to import).
    spec = importlib.util.spec_from_file_location("make_student", TUTORIALS / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--check"])
    assert code == 0, capsys.readouterr().out
