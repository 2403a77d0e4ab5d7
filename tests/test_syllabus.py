"""The syllabus (``docs/syllabus.md``) and the other docs agree with the notebooks.

The points, exercises and written questions are counted here from nbgrader's metadata independently of
``tutorials/tools/syllabus.py`` (which writes the page's generated parts), so a slip in either shows up.
"""

from __future__ import annotations

import importlib.util
import re
import sys

import nbformat
import pytest
from conftest import REPO

TUTORIALS = REPO / "tutorials"
PAGE = REPO / "docs" / "syllabus.md"
NOTEBOOKS = sorted(TUTORIALS.glob("0*.ipynb"))


def _tool():
    spec = importlib.util.spec_from_file_location("syllabus", TUTORIALS / "tools" / "syllabus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["syllabus"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


syllabus = _tool()


def _count(path) -> dict:
    """Exercises, autograded and manual points, and the written answers' ``(grade_id, points)`` of a notebook."""
    nb = nbformat.read(path, as_version=4)
    out = {"exercises": 0, "auto": 0.0, "manual": 0.0, "written": []}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            out["exercises"] += 1
        elif cell.cell_type == "code" and meta.get("grade"):
            out["auto"] += float(meta["points"])
        elif cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            out["manual"] += float(meta["points"])
            out["written"].append((meta["grade_id"], float(meta["points"])))
    return out


COUNTS = {p.name[:2]: _count(p) for p in NOTEBOOKS}


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _section(chapter: str) -> str:
    text = _page()
    start = text.index(f"{{#chapter-{chapter}}}")
    end = text.find("{#chapter-", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_the_generated_parts_are_up_to_date(capsys) -> None:
    assert syllabus.main(["--check"]) == 0, capsys.readouterr().out


def test_the_table_gives_each_chapters_points() -> None:
    rows = {}
    for line in _page().splitlines():
        match = re.match(r"\| \[(\d\d) · [^]]*\]\(#chapter-\1\) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if match:
            rows[match[1]] = tuple(float(x) for x in match.groups()[1:])
    assert set(rows) == set(COUNTS), f"the syllabus table lists chapters {sorted(rows)}, the notebooks {sorted(COUNTS)}"
    for chapter, c in COUNTS.items():
        expected = (c["exercises"], c["auto"], c["manual"], c["auto"] + c["manual"])
        assert rows[chapter] == expected, (
            f"chapter {chapter}: the syllabus says {rows[chapter]}, the notebook {expected}"
        )
    total = sum(c["auto"] + c["manual"] for c in COUNTS.values())
    auto = sum(c["auto"] for c in COUNTS.values())
    assert re.search(
        rf"\| \*\*All {len(COUNTS)}\*\* \| \d+ \| {auto:g} \| {total - auto:g} \| \*\*{total:g}\*\* \|", _page()
    )


def test_every_written_question_is_listed_under_its_chapter_with_its_points() -> None:
    for chapter, c in COUNTS.items():
        section = _section(chapter)
        assert "After this chapter you can" in section or "After the capstone you can" in section, (
            f"chapter {chapter} has no learning outcomes on the syllabus page"
        )
        for grade_id, points in c["written"]:
            assert re.search(rf"\({points:g} points?, `{re.escape(grade_id)}`\)", section), (
                f"chapter {chapter}: written question {grade_id} ({points:g} points) is not listed on the syllabus page"
            )


def test_the_question_texts_are_the_notebooks() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        section = " ".join(_section(path.name[:2]).split())
        for i, cell in enumerate(nb.cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
                words = nb.cells[i - 1].source.split()
                tail = " ".join(words[-12:])  # the question's last words, as the learner reads them
                assert tail in section, f"{path.name} cell {i}: the syllabus does not quote its question ({tail!r})"


def test_fast_mode_statement_follows_the_graders() -> None:
    found = {p.name[:2]: syllabus.fast_dependent_cells(nbformat.read(p, as_version=4)) for p in NOTEBOOKS}
    text = _page()
    for chapter, cells in found.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| [{chapter} · "))
        stated = re.findall(r"`([\w-]+)`", row.rsplit("|", 2)[-2])
        assert stated == cells, f"chapter {chapter}: the syllabus says fast mode changes {stated}, the graders {cells}"
    # The capstone's threshold and budget depend on the mode: the analysis must see that much.
    assert {"heldout-bpd"} <= set(found["08"]), found["08"]


def test_the_fast_mode_analysis_follows_values_through_helpers() -> None:
    nb = nbformat.v4.new_notebook()
    context = nbformat.v4.new_code_cell(
        "import os\nFAST = os.environ.get('CNF_TEACH_FAST') == '1'\nSTEPS = 3 if FAST else 30\n"
        "def fit():\n    return STEPS\nSEED = 0\n"
    )
    context.metadata["tags"] = ["grading-context"]
    cells = [context]
    for grade_id, source in [("uses-helper", "assert fit() > 0"), ("mode-free", "assert SEED == 0")]:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": grade_id}
        cells.append(cell)
    nb.cells = cells
    assert syllabus.fast_dependent_cells(nb) == ["uses-helper"]


def test_the_other_docs_agree() -> None:
    total = sum(c["auto"] + c["manual"] for c in COUNTS.values())
    auto = sum(c["auto"] for c in COUNTS.values())
    instructors = (REPO / "docs" / "instructors.md").read_text(encoding="utf-8")
    claim = re.search(r"\((\d+) in all: (\d+) autograded, (\d+) by hand\)", instructors)
    assert claim, "docs/instructors.md should state the course's points and link the syllabus"
    assert tuple(map(float, claim.groups())) == (total, auto, total - auto), claim.group(0)
    assert "(syllabus.md)" in instructors
    assert "questions in 01-05" not in instructors, "every chapter has written questions"
    exercises = sorted({c["exercises"] for n, c in COUNTS.items() if n != "08"})
    row = re.search(r"\| 01-07 \| (\d)-(\d) exercises each \|", instructors)
    assert row and (int(row[1]), int(row[2])) == (exercises[0], exercises[-1]), (row and row.group(0), exercises)
    readme = (TUTORIALS / "README.md").read_text(encoding="utf-8")
    assert "(../docs/syllabus.md)" in readme, "tutorials/README.md should link the syllabus"
    for chapter, c in COUNTS.items():
        if c["written"]:
            assert f"(instructor/rubric_{chapter}.md)" in readme, f"tutorials/README.md does not link rubric_{chapter}"
    assert "01-05 and the" not in readme, "tutorials/README.md: every chapter has written questions"


def test_the_syllabus_is_in_the_sites_nav() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    assert re.search(r"^\s*- Syllabus: syllabus\.md$", nav, re.MULTILINE)


@pytest.mark.parametrize("chapter", sorted(COUNTS))
def test_the_estimate_is_stated_as_an_estimate(chapter: str) -> None:
    assert "(estimate)" in _section(chapter)
