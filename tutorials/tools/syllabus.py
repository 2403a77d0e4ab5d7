"""The numbers of the syllabus page ``docs/syllabus.md``, counted from the notebooks themselves.

The page's learning outcomes are written by hand; everything that can be counted is generated here, from
the solution notebooks ``tutorials/0*.ipynb``, between ``<!-- syllabus:KEY -->`` and ``<!-- /syllabus:KEY -->``
markers:

- ``table``: per chapter the exercises, the autograded and the manually graded points (nbgrader's metadata:
  test cells are code cells with ``grade``; written answers are markdown cells with ``grade`` and
  ``solution``) and their total, the estimated student time, the machine time in full and in fast mode as
  each notebook's first cell states it, and the graded cells whose result can depend on ``CNF_TEACH_FAST``;
- ``fast``: which grades fast mode can change, found by reading the graders (:func:`fast_dependent_cells`);
- ``qNN``: chapter NN's points and its written questions, quoted from the cell before each answer cell.

The student time is an **estimate from a stated model** (:data:`READING_WPM`, :data:`MINUTES_PER_POINT`), not a
measurement: reading the notebook's prose, working the exercises at a fixed time per point, and running the
notebook once in full mode.

Usage::

    python tutorials/tools/syllabus.py           # rewrite the generated parts of docs/syllabus.md
    python tutorials/tools/syllabus.py --check   # exit 1 if they are out of date (a test runs this)
"""

from __future__ import annotations

import argparse
import ast
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

__all__ = [
    "Chapter",
    "Question",
    "chapters",
    "fast_dependent_cells",
    "render",
    "update",
    "main",
    "READING_WPM",
    "MINUTES_PER_POINT",
]

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "tutorials"
PAGE = REPO / "docs" / "syllabus.md"
PATTERN = "0*.ipynb"
CONTEXT_TAG = "grading-context"
READING_WPM = 100  # words of prose a minute: a slow pace, for text dense with mathematics
MINUTES_PER_POINT = 5  # working time per point, autograded or written: write, run the checks, fix, re-run
QUESTION = re.compile(
    r"[Qq]uestion(?:\s+(?P<label>[0-9A-Z]\w*))?\s*\((?:[^()]*?,\s*)?(?P<points>\d+(?:\.\d+)?)\s+points?\)"
)
FULL_TIME = re.compile(
    r"\*\*Expected run time:\*\*\s*(?P<text>(?:about|under|well under) (?P<n>[\d.]+) (?P<unit>s|min))\b"
)
FAST_TIME = re.compile(r"about the same|(?:about|under|well under) (?:a minute|[\d.]+ (?:s|min))")
MARKER = re.compile(r"(<!-- syllabus:(?P<key>\w+) -->\n).*?(<!-- /syllabus:(?P=key) -->)", re.DOTALL)


@dataclass(frozen=True)
class Question:
    """A manually graded written question: its label, points, the answer cell's grade_id, and its text."""

    label: str
    points: float
    grade_id: str
    text: str


@dataclass
class Chapter:
    """What a syllabus needs to know about one notebook."""

    number: str
    name: str
    title: str
    exercises: int = 0
    auto: float = 0.0
    manual: float = 0.0
    words: int = 0
    full_time: str = ""
    full_minutes: float = 0.0
    fast_time: str = ""
    questions: list[Question] = field(default_factory=list)
    fast_cells: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.auto + self.manual

    @property
    def student_minutes(self) -> float:
        """The model estimate: reading + working every point + one full run of the notebook."""
        return self.words / READING_WPM + MINUTES_PER_POINT * self.total + self.full_minutes


def _meta(cell: nbformat.NotebookNode) -> dict:
    return cell.metadata.get("nbgrader", {})


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _defined(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _reads_mode(source: str) -> bool:
    return "CNF_TEACH_FAST" in source


def fast_dependent_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The graded test cells whose inputs can depend on ``CNF_TEACH_FAST``, by reading the graders.

    A test cell sees only the grading-context cells, the answer cells and itself (the rule of
    ``tutorials/README.md``). A name is mode-dependent when a grading-context statement that defines it
    reads ``CNF_TEACH_FAST`` or a mode-dependent name (to a fixed point: ``STEPS = 60 if FAST else 1000``,
    then a helper that trains for ``STEPS``). A test cell is listed when it reads the variable itself or
    uses a mode-dependent name.

    Args:
        nb: A solution notebook.

    Returns:
        The grade_ids of those test cells, in notebook order.
    """
    statements = []
    for cell in nb.cells:
        if cell.cell_type == "code" and CONTEXT_TAG in cell.metadata.get("tags", []):
            for stmt in ast.parse(cell.source).body:
                statements.append((stmt, ast.get_source_segment(cell.source, stmt) or ""))
    dependent: set[str] = set()
    changed = True
    while changed:
        changed = False
        for stmt, text in statements:
            if _reads_mode(text) or _names(stmt) & dependent:
                new = _defined(stmt) - dependent
                if new:
                    dependent |= new
                    changed = True
    cells = []
    for cell in nb.cells:
        meta = _meta(cell)
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            if _reads_mode(cell.source) or _names(ast.parse(cell.source)) & dependent:
                cells.append(meta["grade_id"])
    return cells


def _sentence_with(text: str, needle: str) -> str:
    """The sentence (or the clause after a semicolon) of ``text`` that holds ``needle``."""
    for part in re.split(r"(?<=[.;])\s+", text):
        if needle in part:
            return part
    return ""


def _question(before: str, points: float, grade_id: str) -> Question:
    """The question stated in ``before``, the markdown cell right before its answer cell."""
    labels = list(QUESTION.finditer(before))
    if not labels:  # the learner sees no question (tests/test_written_questions.py fails): say so here too
        return Question("", points, grade_id, "(no question stated before the answer cell)")
    match = labels[-1]
    line_start = before.rfind("\n", 0, match.start()) + 1
    rest = before[match.end() :]
    if before[: match.start()].rstrip().endswith("**"):  # "**Question A (2 points).**": close the label's bold
        rest = re.sub(r"^[.:]?\*\*[.:]?", "", rest)
    title = ""
    if before[line_start:].lstrip().startswith("#"):  # a heading: its remainder is the question's title
        title, _, rest = rest.partition("\n")
        title = title.strip(" :.")
    text = " ".join(rest.strip().lstrip(":.").split())
    title = title[:1].upper() + title[1:]
    return Question(match["label"] or "", points, grade_id, f"*{title}.* {text}" if title else text)


def _chapter(path: Path) -> Chapter:
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    title = first.splitlines()[0].lstrip("# ").split("·", 1)[-1].strip()
    ch = Chapter(number=path.name[:2], name=path.name, title=title)
    full = FULL_TIME.search(first)
    fast = FAST_TIME.search(_sentence_with(first, "CNF_TEACH_FAST=1"))
    if not full or not fast:
        raise ValueError(
            f"{path.name}: its first cell must state '**Expected run time:** about N s|min' and the fast-mode time"
        )
    ch.full_time, ch.fast_time = full["text"], fast.group(0)
    ch.full_minutes = float(full["n"]) / (60 if full["unit"] == "s" else 1)
    for i, cell in enumerate(nb.cells):
        meta = _meta(cell)
        if cell.cell_type == "markdown" and not meta.get("solution"):
            ch.words += len(cell.source.split())
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            ch.exercises += 1
        elif cell.cell_type == "code" and meta.get("grade"):
            ch.auto += float(meta.get("points", 0))
        elif cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
            points = float(meta.get("points", 0))
            ch.manual += points
            before = nb.cells[i - 1].source if i > 0 else ""
            ch.questions.append(_question(before, points, meta.get("grade_id", "")))
    ch.fast_cells = fast_dependent_cells(nb)
    return ch


def chapters(tutorials: Path = TUTORIALS) -> list[Chapter]:
    """Every solution notebook's :class:`Chapter`, in course order."""
    return [_chapter(p) for p in sorted(tutorials.glob(PATTERN))]


def _pts(x: float) -> str:
    return f"{x:g}"


def _hours(minutes: float) -> str:
    quarter = max(0.25, math.ceil(minutes / 15) / 4)  # rounded up to the quarter hour
    return f"about {quarter:g} h"


def _table(chs: list[Chapter]) -> str:
    rows = [
        "| Chapter | Exercises | Autograded | By hand | Total | Your time (estimate) | Run time, full"
        " | Run time, fast | Grades that fast mode can change |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for c in chs:
        fast = c.fast_time + (f" ({c.full_time})" if c.fast_time == "about the same" else "")
        changes = ", ".join(f"`{g}`" for g in c.fast_cells) or "none"
        rows.append(
            f"| [{c.number} · {c.title}](#chapter-{c.number}) | {c.exercises} | {_pts(c.auto)} | {_pts(c.manual)} |"
            f" {_pts(c.total)} | {_hours(c.student_minutes)} | {c.full_time} | {fast} | {changes} |"
        )
    auto, manual = sum(c.auto for c in chs), sum(c.manual for c in chs)
    minutes = sum(c.student_minutes for c in chs)
    rows.append(
        f"| **All {len(chs)}** | {sum(c.exercises for c in chs)} | {_pts(auto)} | {_pts(manual)} |"
        f" **{_pts(auto + manual)}** | about {math.ceil(minutes / 60)} h | | | |"
    )
    return "\n".join(rows)


def _fast(chs: list[Chapter]) -> str:
    changed = [c for c in chs if c.fast_cells]
    same = [c.number for c in chs if not c.fast_cells]
    lines = []
    if same:
        lines.append(
            f"In chapters {', '.join(same)} no graded test cell, and no grading-context cell that one uses, reads"
            " `CNF_TEACH_FAST` or anything computed from it: fast mode shortens only the ungraded cells in between"
            " (training, figures), so it changes none of these chapters' grades."
        )
    for c in changed:
        lines.append(
            f"In chapter {c.number} fast mode can change the grade of {', '.join(f'`{g}`' for g in c.fast_cells)}:"
            " these test cells use values that the grading-context cells set from `CNF_TEACH_FAST` (a training"
            " budget, a threshold). Grade this chapter without `CNF_TEACH_FAST`."
        )
    return "\n\n".join(lines)


def _questions(c: Chapter) -> str:
    head = (
        f"**Points:** {_pts(c.auto)} autograded ({c.exercises} exercises) + {_pts(c.manual)} by hand ="
        f" **{_pts(c.total)}**. **Your time:** {_hours(c.student_minutes)} (estimate). **Run time:** {c.full_time}"
        f" in full mode, {c.fast_time} with `CNF_TEACH_FAST=1`."
    )
    lines = [head, "", "**Written questions** (graded by hand):", ""]
    for q in c.questions:
        name = f"Question {q.label}" if q.label else "Written question"
        lines.append(f"- **{name}** ({_pts(q.points)} points, `{q.grade_id}`). {q.text}")
    return "\n".join(lines)


def render(chs: list[Chapter]) -> dict[str, str]:
    """The generated block of every marker key: ``table``, ``fast`` and ``q01``, ``q02``, ..."""
    blocks = {"table": _table(chs), "fast": _fast(chs)}
    blocks.update({f"q{c.number}": _questions(c) for c in chs})
    return blocks


def update(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every marked block replaced by its generated content.

    Raises:
        ValueError: A block has no marker in the page, or a marker has no block.
    """
    found = {m["key"] for m in MARKER.finditer(text)}
    if found != set(blocks):
        raise ValueError(
            f"docs/syllabus.md: markers missing for {sorted(set(blocks) - found)},"
            f" unknown markers {sorted(found - set(blocks))}"
        )
    return MARKER.sub(lambda m: f"{m.group(1)}{blocks[m['key']]}\n{m.group(3)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if docs/syllabus.md is stale")
    parser.add_argument("--page", type=Path, default=PAGE, help="the syllabus page")
    args = parser.parse_args(argv)
    try:
        text = args.page.read_text(encoding="utf-8")
        new = update(text, render(chapters()))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if new == text:
        print("docs/syllabus.md is up to date")
        return 0
    if args.check:
        print("docs/syllabus.md is out of date with the notebooks: run `python tutorials/tools/syllabus.py`")
        return 1
    args.page.write_text(new, encoding="utf-8")
    print(f"rewrote the generated parts of {args.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
