"""Build an nbgrader course folder: every chapter an assignment, generated and ready to release.

``make course`` runs this script. It writes (by default into ``course/`` at the repository root, which
git ignores):

- ``nbgrader_config.py``: the course id, the course folder as its root (wherever the folder is moved),
  and the cell timeouts the notebooks need (:data:`CELL_TIMEOUT`), so that ``nbgrader autograde`` does not
  cut a training cell off at nbgrader's default of 30 seconds;
- ``source/<assignment>/``: one assignment per solution notebook ``tutorials/0*.ipynb``, named after the
  notebook (``01_change_of_variables`` ... ``08_capstone_colourisation``), with a copy of
  :data:`STUDENT_CONFIG` beside the notebook;
- ``release/<assignment>/`` by ``nbgrader generate_assignment``: the student notebook (solutions and hidden
  tests removed; cell for cell ``tutorials/student/``, which the script checks) and the student's
  ``nbgrader_config.py``; the test cells are recorded in ``gradebook.db``.

Validate on a student's machine. nbgrader's Validate (the JupyterLab button and ``nbgrader validate``) reads
``nbgrader_config.py`` from the folder that Jupyter (or the command) was started in and from Jupyter's
configuration folders (``jupyter --paths``), never from this repository. The released folder therefore carries
its own ``nbgrader_config.py`` with the timeouts: it applies when the student starts Jupyter (or runs
``nbgrader validate``) in the assignment's folder, or, anywhere, once copied into ``jupyter --config-dir``.

Usage::

    python tutorials/tools/make_course.py                        # course/ (make course)
    python tutorials/tools/make_course.py --course ~/cnf-course  # elsewhere
    python tutorials/tools/make_course.py --students class.csv   # also import the class list (nbgrader's CSV)

Re-running it regenerates every assignment (``--force``); submissions, grades and feedback already in the
folder are left alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

__all__ = [
    "CELL_TIMEOUT",
    "IOPUB_TIMEOUT",
    "COURSE_ID",
    "STUDENT_CONFIG",
    "assignments",
    "course_config",
    "build",
    "main",
]

log = logging.getLogger("make_course")

TUTORIALS = Path(__file__).resolve().parents[1]
REPO = TUTORIALS.parent
PATTERN = "0*.ipynb"
COURSE_ID = "cnf-teach"
# Seconds per cell. The longest cells (training in 02-06 and 08) take one to three minutes of CPU time on a
# laptop in full mode; executed on a heavily loaded shared machine the longest took 26 minutes (04's
# training cell, from the execution times stored in the notebooks). An hour leaves twice that, and still
# stops a student's endless loop.
CELL_TIMEOUT = 3600
IOPUB_TIMEOUT = 60  # seconds to wait for a finished cell's output (nbgrader's default of 4 s fails when busy)

STUDENT_CONFIG = f'''"""nbgrader's settings for Validate: the cell timeouts of the cnf_teach course.

Validate (the JupyterLab button, or `nbgrader validate`) reads this file from the folder that Jupyter or the
command was started in, and from Jupyter's configuration folders (`jupyter --paths`). Start Jupyter in this
folder, or copy this file once into the folder `jupyter --config-dir` prints. Without it nbgrader gives every
cell 30 seconds, and the training cells would be reported as timed out instead of checked.
"""

c = get_config()  # noqa: F821 - nbgrader's configuration loader provides get_config

c.Execute.timeout = {CELL_TIMEOUT}  # seconds per cell
c.Execute.iopub_timeout = {IOPUB_TIMEOUT}  # seconds to wait for a finished cell's output
'''


def assignments(tutorials: Path = TUTORIALS) -> dict[str, Path]:
    """``{assignment name: solution notebook}``, one assignment per chapter, named after its notebook."""
    return {path.stem: path for path in sorted(tutorials.glob(PATTERN))}


def course_config() -> str:
    """The text of the course folder's ``nbgrader_config.py`` (the instructor's: generate, autograde)."""
    return f'''"""nbgrader's settings for the cnf_teach course (written by tutorials/tools/make_course.py).

Every nbgrader command run in this folder reads them: generate_assignment, autograde, generate_feedback, and
the Formgrader of a JupyterLab started here.
"""

import os

c = get_config()  # noqa: F821 - nbgrader's configuration loader provides get_config

c.CourseDirectory.course_id = "{COURSE_ID}"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))  # this folder, wherever it is moved
c.Execute.timeout = {CELL_TIMEOUT}  # seconds per cell: training cells take minutes (nbgrader's default: 30)
c.Execute.iopub_timeout = {IOPUB_TIMEOUT}  # seconds to wait for a finished cell's output
'''


def _nbgrader(course: Path, *args: str) -> None:
    """Run ``python -m nbgrader ARGS`` in ``course`` with this interpreter; raise with its output on failure."""
    env = dict(os.environ)
    # nbgrader's database commands call the `alembic` script installed next to the interpreter.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def _generate(course: Path, names: list[str]) -> None:
    """``nbgrader generate_assignment NAME --force`` for every name, in this process (nbgrader is imported once)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    # nbgrader's database migrations call the `alembic` script installed next to the interpreter.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    api = NbGraderAPI(config=PyFileConfigLoader("nbgrader_config.py", str(course)).load_config())
    for name in names:
        result = api.generate_assignment(name, force=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {name} failed:\n{result['log'][-3000:]}")


def _same_cells(a: Path, b: Path) -> bool:
    cells = [[(c.cell_type, c.source) for c in nbformat.read(p, as_version=4).cells] for p in (a, b)]
    return cells[0] == cells[1]


def build(course: Path, tutorials: Path = TUTORIALS, students: Path | None = None) -> list[str]:
    """Write the course folder and generate every assignment.

    Args:
        course: The course folder (created if missing).
        tutorials: The folder of the solution notebooks (their student versions in ``tutorials/student``).
        students: A CSV of students for ``nbgrader db student import`` (columns ``id``, ``first_name``,
            ``last_name``, ``email``), or ``None``.

    Returns:
        The assignment names, in course order.

    Raises:
        RuntimeError: An nbgrader command failed, or a released notebook differs from its student version.
    """
    course = course.resolve()
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(course_config(), encoding="utf-8")
    names = assignments(tutorials)
    for name, notebook in names.items():
        source = course / "source" / name
        source.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, source / notebook.name)
        (source / "nbgrader_config.py").write_text(STUDENT_CONFIG, encoding="utf-8")
    if students is not None:
        _nbgrader(course, "db", "student", "import", str(students.resolve()))
    _generate(course, list(names))
    for name, notebook in names.items():
        released = course / "release" / name / notebook.name
        student = tutorials / "student" / notebook.name
        if student.exists() and not _same_cells(released, student):
            raise RuntimeError(
                f"release/{name}/{notebook.name} differs from student/{notebook.name}: run `make student`"
            )
        log.info("generated %s", name)
    return list(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=REPO / "course", help="the course folder (default: course/)")
    parser.add_argument("--tutorials", type=Path, default=TUTORIALS, help="folder of the solution notebooks")
    parser.add_argument("--students", type=Path, help="CSV of students to import into the gradebook")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.students is not None and not args.students.is_file():
        print(f"error: no file {args.students}: pass the CSV of your class to --students", file=sys.stderr)
        return 2
    if not any(args.tutorials.glob(PATTERN)):
        print(f"error: no notebooks {PATTERN} in {args.tutorials}: pass the tutorials folder", file=sys.stderr)
        return 2
    try:
        names = build(args.course, args.tutorials, args.students)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.course}: {len(names)} assignments generated and ready to release ({', '.join(names)})")
    print(
        "next: add students (nbgrader db student add / import), then hand out release/<assignment>/ "
        "or run `nbgrader release_assignment <assignment>` in that folder"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
