"""Generate the student notebooks ``tutorials/student/*.ipynb`` from the solution notebooks.

The solution notebooks ``tutorials/0*.ipynb`` are the source. The student version of each is made
with nbgrader's own preprocessors, the same ones ``nbgrader generate_assignment`` runs:

- ``ClearSolutions`` replaces every ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region with
  nbgrader's default stub (``# YOUR CODE HERE`` / ``raise NotImplementedError()``);
- ``ClearHiddenTests`` drops the ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` regions;
- ``ClearOutput`` removes the stored outputs and execution counts (and we drop the execution
  timestamps nbconvert leaves in the cell metadata).

Usage::

    python tutorials/tools/make_student.py           # (re)write tutorials/student/
    python tutorials/tools/make_student.py --check   # exit 1 if tutorials/student/ is out of sync
    python tutorials/tools/make_student.py 03 05     # only the chapters named (by number or file name)

``make student`` runs the first form; the test suite runs the second.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

__all__ = ["student_notebook", "render", "sync", "main"]

TUTORIALS = Path(__file__).resolve().parents[1]
PATTERN = "0*.ipynb"


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of a solution notebook (the input is left untouched).

    Args:
        nb: A solution notebook in nbformat 4.

    Returns:
        The same notebook without solutions, hidden tests or outputs.
    """
    nb = copy.deepcopy(nb)  # the preprocessors work in place
    resources: dict = {}
    # enforce_metadata: a solution region outside an nbgrader answer cell is an authoring error.
    for pre in (ClearSolutions(enforce_metadata=True), ClearHiddenTests(enforce_metadata=True), ClearOutput()):
        nb, resources = pre.preprocess(nb, resources)
    for cell in nb.cells:  # run timestamps from the execution of the solution: noise for learners and diffs
        cell.metadata.pop("execution", None)
    return nb


def render(path: Path) -> str:
    """The exact text of the student version of the solution notebook at ``path``."""
    nb = nbformat.read(path, as_version=4)
    return nbformat.writes(student_notebook(nb)) + "\n"


def sync(tutorials: Path = TUTORIALS, check: bool = False, only: list[str] | None = None) -> list[str]:
    """Write (or, with ``check``, compare) the student versions of every solution notebook.

    Args:
        tutorials: The folder holding the solution notebooks; students go to ``tutorials/student``.
        check: Only compare: write nothing.
        only: Chapter numbers (``"03"``) or notebook names: handle only these; stale student
            notebooks are then left alone.

    Returns:
        One line per student notebook that was (or, with ``check``, would be) created, changed or
        removed; empty when everything is in sync.
    """
    out_dir = tutorials / "student"
    sources = sorted(tutorials.glob(PATTERN))
    if only:
        wanted = {name.removesuffix(".ipynb") for name in only}
        sources = [s for s in sources if s.stem in wanted or s.name[:2] in wanted]
        unknown = wanted - {s.stem for s in sources} - {s.name[:2] for s in sources}
        if unknown:
            raise ValueError(f"no solution notebook for {sorted(unknown)}: name chapters as 03 or 03_glow_multiscale")
    problems: list[str] = []
    expected = set()
    for src in sources:
        dst = out_dir / src.name
        expected.add(dst.name)
        text = render(src)
        current = dst.read_text(encoding="utf-8") if dst.exists() else None
        if current == text:
            continue
        problems.append(f"{'missing' if current is None else 'out of date'}: student/{dst.name}")
        if not check:
            out_dir.mkdir(exist_ok=True)
            dst.write_text(text, encoding="utf-8")
    for stale in sorted(out_dir.glob(PATTERN)) if not only else []:
        if stale.name not in expected:
            problems.append(f"no solution notebook for student/{stale.name}")
            if not check:
                stale.unlink()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if student/ is out of sync")
    parser.add_argument("--tutorials", type=Path, default=TUTORIALS, help="folder of the solution notebooks")
    parser.add_argument("chapters", nargs="*", help="only these chapters (03 or 03_glow_multiscale); default all")
    args = parser.parse_args(argv)
    try:
        problems = sync(args.tutorials, check=args.check, only=args.chapters)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if args.check:
        if problems:
            print("The student notebooks are out of sync with the solutions (run `make student`):")
            print("\n".join(f"  {p}" for p in problems))
            return 1
        print(f"student notebooks in sync ({len(list(args.tutorials.glob(PATTERN)))} notebooks)")
        return 0
    print("\n".join(problems) if problems else "student notebooks already in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
