"""The learner's workspace (``tutorials/tools/workspace.py``, ``make lab``): nothing overwrites the learner's work.

A course update is simulated by rewriting a student notebook in a temporary copy of ``tutorials/student/``;
the workspace lives in a temporary folder too, so nothing here touches the repository's own.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO

TOOLS = REPO / "tutorials" / "tools"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


ws = _module("workspace")
CHAPTERS = sorted(p.name for p in (REPO / "tutorials" / "student").glob("0*.ipynb"))


@pytest.fixture
def course(tmp_path: Path) -> tuple[Path, Path]:
    """``(student folder, workspace folder)``: a copy of the course's student notebooks and an empty workspace."""
    student = tmp_path / "student"
    shutil.copytree(REPO / "tutorials" / "student", student)
    return student, tmp_path / "workspace"


def _edit(path: Path, text: str) -> None:
    """Append a markdown cell, as a learner (or a course update) would change a notebook."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(text))
    nbformat.write(nb, path)


def _actions(reports) -> dict[str, str]:
    return {r.name: r.action for r in reports}


def test_first_use_copies_every_student_notebook(course) -> None:
    student, workspace = course
    assert CHAPTERS, "no student notebooks"
    assert set(_actions(ws.sync(student, workspace)).values()) == {"copied"}
    assert sorted(p.name for p in workspace.glob("0*.ipynb")) == CHAPTERS
    for name in CHAPTERS:
        assert (workspace / name).read_bytes() == (student / name).read_bytes()
    assert (workspace / ws.MANIFEST).exists() and (workspace / "README.md").exists()
    assert set(_actions(ws.sync(student, workspace)).values()) == {"unchanged"}  # a second run changes nothing


def test_an_edited_notebook_survives_a_course_update(course, capsys) -> None:
    student, workspace = course
    ws.sync(student, workspace)
    mine, other = workspace / CHAPTERS[0], workspace / CHAPTERS[1]
    _edit(mine, "my answer to the written question")
    my_bytes = mine.read_bytes()
    # The course ships a newer version of both chapters; the learner changed only the first.
    _edit(student / CHAPTERS[0], "course update")
    _edit(student / CHAPTERS[1], "course update")
    assert ws.main(["sync", "--student", str(student), "--workspace", str(workspace)]) == 0
    out = capsys.readouterr().out
    assert mine.read_bytes() == my_bytes, "the learner's edited notebook was overwritten"
    assert other.read_bytes() == (student / CHAPTERS[1]).read_bytes(), "an untouched copy was not updated"
    chapter = CHAPTERS[0][:2]
    assert f"chapter {chapter}" in out and f"make lab-update CHAPTER={chapter}" in out, out
    assert f"chapter {CHAPTERS[1][:2]}" not in out.split("A newer version")[-1], out
    # Taking the update puts it beside the learner's copy, never over it; the announcement then stops.
    assert ws.main(["take", chapter, "--student", str(student), "--workspace", str(workspace)]) == 0
    new = [p for p in workspace.glob(f"{Path(CHAPTERS[0]).stem}.update-*.ipynb")]
    assert len(new) == 1 and new[0].read_bytes() == (student / CHAPTERS[0]).read_bytes()
    assert mine.read_bytes() == my_bytes
    assert _actions(ws.sync(student, workspace))[CHAPTERS[0]] == "yours"
    assert mine.read_bytes() == my_bytes
    # A learner who works in the taken copy keeps that work when taking the same version again.
    _edit(new[0], "work in the new copy")
    kept = new[0].read_bytes()
    ws.take(student, workspace, chapter)
    assert new[0].read_bytes() == kept
    # make student regenerates tutorials/student/ only: the workspace is not its business.
    make_student = _module("make_student")
    tutorials = student.parent / "course"
    (tutorials / "student").mkdir(parents=True)
    shutil.copy2(REPO / "tutorials" / CHAPTERS[0], tutorials / CHAPTERS[0])
    (tutorials / "workspace").mkdir()
    shutil.copy2(mine, tutorials / "workspace" / CHAPTERS[0])
    make_student.sync(tutorials)
    assert (tutorials / "workspace" / CHAPTERS[0]).read_bytes() == my_bytes


def test_a_changed_notebook_is_never_overwritten_even_without_the_record(course) -> None:
    student, workspace = course
    ws.sync(student, workspace)
    _edit(workspace / CHAPTERS[2], "mine")
    mine = (workspace / CHAPTERS[2]).read_bytes()
    (workspace / ws.MANIFEST).unlink()  # the record is lost
    reports = _actions(ws.sync(student, workspace))
    assert reports[CHAPTERS[2]] == "update-available"
    assert reports[CHAPTERS[3]] == "unchanged"
    assert (workspace / CHAPTERS[2]).read_bytes() == mine


def test_a_deleted_copy_comes_back_and_a_damaged_record_is_one_line(course, capsys) -> None:
    student, workspace = course
    ws.sync(student, workspace)
    (workspace / CHAPTERS[0]).unlink()
    assert _actions(ws.sync(student, workspace))[CHAPTERS[0]] == "restored"
    assert (workspace / CHAPTERS[0]).read_bytes() == (student / CHAPTERS[0]).read_bytes()
    (workspace / ws.MANIFEST).write_text("{not json", encoding="utf-8")
    assert ws.main(["--student", str(student), "--workspace", str(workspace)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "move it away" in err, err
    assert ws.main(["take", "42", "--student", str(student), "--workspace", str(workspace)]) == 2
    assert "CHAPTER=03" in capsys.readouterr().err


def test_status_writes_nothing(course) -> None:
    student, workspace = course
    assert set(_actions(ws.status(student, workspace)).values()) == {"copied"}
    assert not workspace.exists()


def test_a_notebook_runs_from_the_workspace(course) -> None:
    # The graded cells of a solved chapter 01, run from a workspace folder as a kernel started there would.
    sys.path.insert(0, str(REPO / "tests" / "tutorials"))
    try:
        from harness import load, run_graded
    finally:
        sys.path.pop(0)
    student, workspace = course
    ws.sync(student, workspace)
    solved = workspace / "01_solved.ipynb"
    shutil.copy2(REPO / "tutorials" / CHAPTERS[0], solved)
    results = run_graded(load(solved))
    assert results and all(v is None for v in results.values()), results


def test_make_lab_fills_the_workspace_first_and_lab_update_takes_a_chapter() -> None:
    def dry(*args: str) -> list[str]:
        out = subprocess.run(["make", "-s", "-n", *args], cwd=REPO, capture_output=True, text=True, check=True)
        return [line for line in out.stdout.replace("\\\n", " ").splitlines() if line.strip()]

    lab = dry("lab")
    sync = next(i for i, line in enumerate(lab) if "tutorials/tools/workspace.py sync" in line)
    jupyter = next(i for i, line in enumerate(lab) if "jupyter lab" in line)
    assert sync < jupyter, lab
    assert any("workspace.py take 03" in line for line in dry("lab-update", "CHAPTER=03"))


def test_the_workspace_is_ignored_by_git() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    path = "tutorials/workspace/01_change_of_variables.ipynb"
    result = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
    assert result.returncode == 0, f"{path} is not ignored by git: see .gitignore"


def test_the_start_page_sends_the_learner_to_the_workspace() -> None:
    page = (REPO / "tutorials" / "00_start_here.md").read_text(encoding="utf-8")
    for name in CHAPTERS:
        assert f"(workspace/{name})" in page, f"the start page does not link workspace/{name}"
    assert "(student/" not in page, "the start page still links the course's student/ notebooks"
    assert "make lab-update CHAPTER=" in page


def test_a_workspace_outside_the_served_folder_is_warned_of(course, tmp_path, capsys) -> None:
    """JupyterLab serves the folder of ``student/`` only: a workspace elsewhere is made, with a one-line warning."""
    student, _ = course
    outside = tmp_path.parent / f"{tmp_path.name}_elsewhere"
    assert ws.main(["--student", str(student), "--workspace", str(outside)]) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "LAB_WORKSPACE=" in err and "outside" in err, err
    assert sorted(p.name for p in outside.glob("0*.ipynb")) == CHAPTERS
    inside = student.parent / "mywork"
    assert ws.main(["--student", str(student), "--workspace", str(inside)]) == 0
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in inside.glob("0*.ipynb")) == CHAPTERS
