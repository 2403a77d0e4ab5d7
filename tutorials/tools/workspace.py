"""The learner's workspace ``tutorials/workspace/``: own copies of the student notebooks that nothing overwrites.

``tutorials/student/`` belongs to the course: ``make student`` regenerates it and a ``git pull`` of a course
update changes it. A learner works in ``tutorials/workspace/`` instead, a git-ignored folder that ``make lab``
fills from ``tutorials/student/`` on first use. The workspace records, for every notebook it copied, the
SHA-256 of the student version it was copied from (``.workspace.json``); a notebook whose content still has
that hash is untouched, anything else is the learner's work.

On every later ``make lab`` (:func:`sync`):

- a chapter new to the workspace, or a copy the learner deleted, is copied in;
- a newer student version of a chapter the learner never changed replaces the untouched copy (nothing is lost);
- a newer student version of a chapter the learner changed is **not** copied over it: the learner is told
  which chapters have a newer version and how to take it, ``make lab-update CHAPTER=NN`` (:func:`take`),
  which writes it *beside* the learner's copy as ``NN_name.update-<hash>.ipynb``, never over a file.

Usage::

    python tutorials/tools/workspace.py              # sync: what `make lab` runs before JupyterLab starts
    python tutorials/tools/workspace.py status       # what is new, changed or out of date; writes nothing
    python tutorials/tools/workspace.py take 03      # the newer version of chapter 03, beside your copy

Examples:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "student").mkdir()
    >>> _ = (root / "student" / "01_a.ipynb").write_text("v1")
    >>> [r.action for r in sync(root / "student", root / "workspace")]
    ['copied']
    >>> _ = (root / "workspace" / "01_a.ipynb").write_text("my answer")  # the learner works
    >>> _ = (root / "student" / "01_a.ipynb").write_text("v2")  # a course update
    >>> [r.action for r in sync(root / "student", root / "workspace")]
    ['update-available']
    >>> (root / "workspace" / "01_a.ipynb").read_text()
    'my answer'
    >>> take(root / "student", root / "workspace", "01").name
    '01_a.update-...ipynb'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Report", "WorkspaceError", "sync", "status", "take", "main", "STUDENT", "WORKSPACE", "MANIFEST"]

TUTORIALS = Path(__file__).resolve().parents[1]
STUDENT = TUTORIALS / "student"
WORKSPACE = TUTORIALS / "workspace"
MANIFEST = ".workspace.json"
PATTERN = "0*.ipynb"
README = """# Your workspace

Your own copies of the course notebooks, made by `make lab` from `tutorials/student/` on first use.
Work here. Nothing overwrites a notebook you changed: not `make lab`, not `make student`, not a
course update (`git pull`). This folder is ignored by git, so keep a backup of it if your work matters.

When the course ships a newer version of a chapter you have changed, `make lab` says so; then
`make lab-update CHAPTER=NN` puts the new version beside yours as `NN_name.update-<hash>.ipynb`.
Delete a notebook here (one you have not changed, or whose work you no longer need) and the next
`make lab` copies the current student version back.
"""


class WorkspaceError(ValueError):
    """A problem the learner can fix (an unknown chapter, a damaged record): one line, the fix included."""


@dataclass(frozen=True)
class Report:
    """What happened (or, in :func:`status`, would happen) to one chapter.

    Attributes:
        name: The notebook's file name, e.g. ``03_glow_multiscale.ipynb``.
        action: ``copied`` (new to the workspace), ``restored`` (the learner had deleted it), ``updated``
            (untouched copy replaced by a newer version), ``update-available`` (changed copy, newer version
            not taken), ``unchanged`` or ``yours`` (the learner's changes, no newer version).
    """

    name: str
    action: str

    @property
    def chapter(self) -> str:
        return self.name[:2]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(workspace: Path) -> dict[str, dict[str, str]]:
    path = workspace / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        notebooks = data["notebooks"]
        assert isinstance(notebooks, dict)
    except (ValueError, KeyError, AssertionError) as err:
        raise WorkspaceError(
            f"{path} is damaged ({err}); move it away and run `make lab` again (your notebooks are kept)"
        ) from None
    return notebooks


def _write_manifest(workspace: Path, notebooks: dict[str, dict[str, str]]) -> None:
    path = workspace / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": 1, "notebooks": notebooks}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _copy(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` (never called for a file the learner changed) and return its hash."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return _sha256(dst)


def _plan(student: Path, workspace: Path) -> tuple[list[tuple[Path, str]], dict[str, dict[str, str]]]:
    manifest = _read_manifest(workspace)
    plan = []
    for src in sorted(student.glob(PATTERN)):
        mine = workspace / src.name
        entry = manifest.get(src.name)
        course = _sha256(src)
        if not mine.exists():
            action = "restored" if entry else "copied"
        elif entry is None:
            # A notebook the record does not know (the record was lost): the learner's unless identical.
            action = "unchanged" if _sha256(mine) == course else "update-available"
        else:
            untouched = _sha256(mine) == entry["copied"]
            if course == entry["copied"]:
                action = "unchanged" if untouched else "yours"
            elif untouched:
                action = "updated"
            else:
                action = "yours" if entry.get("taken") == course else "update-available"
        plan.append((src, action))
    return plan, manifest


def status(student: Path = STUDENT, workspace: Path = WORKSPACE) -> list[Report]:
    """What :func:`sync` would do, chapter by chapter; writes nothing.

    Args:
        student: The course's student notebooks.
        workspace: The learner's workspace.

    Returns:
        One :class:`Report` per student notebook, in course order.
    """
    plan, _ = _plan(student, workspace)
    return [Report(src.name, action) for src, action in plan]


def sync(student: Path = STUDENT, workspace: Path = WORKSPACE) -> list[Report]:
    """Create or refresh the workspace without ever overwriting a notebook the learner changed.

    Args:
        student: The course's student notebooks (``tutorials/student/``).
        workspace: The learner's workspace (``tutorials/workspace/``); created on first use.

    Returns:
        One :class:`Report` per student notebook, in course order.

    Raises:
        WorkspaceError: There are no student notebooks, or the workspace's record is damaged.
    """
    if not any(student.glob(PATTERN)):
        raise WorkspaceError(f"no student notebooks in {student}; run `make student` in the repository")
    workspace.mkdir(parents=True, exist_ok=True)
    plan, manifest = _plan(student, workspace)
    for src, action in plan:
        mine = workspace / src.name
        if action in ("copied", "restored", "updated"):
            manifest[src.name] = {"copied": _copy(src, mine)}
        elif action == "unchanged" and src.name not in manifest:
            manifest[src.name] = {"copied": _sha256(mine)}
    _write_manifest(workspace, manifest)
    readme = workspace / "README.md"
    if not readme.exists():
        readme.write_text(README, encoding="utf-8")
    return [Report(src.name, action) for src, action in plan]


def take(student: Path, workspace: Path, chapter: str) -> Path:
    """Copy the current student version of ``chapter`` beside the learner's copy, never over a file.

    Args:
        student: The course's student notebooks.
        workspace: The learner's workspace.
        chapter: The chapter number (``"03"``, ``"3"``) or the notebook's name.

    Returns:
        The path of the new copy, ``NN_name.update-<first 8 hex digits of its hash>.ipynb``.

    Raises:
        WorkspaceError: No such chapter, or no workspace yet.
    """
    key = chapter.removesuffix(".ipynb")
    key = key.zfill(2) if key.isdigit() else key
    matches = [p for p in sorted(student.glob(PATTERN)) if p.stem == key or p.name[:2] == key]
    if len(matches) != 1:
        known = " ".join(p.name[:2] for p in sorted(student.glob(PATTERN)))
        raise WorkspaceError(f"no chapter {chapter!r}; give one of: {known} (e.g. make lab-update CHAPTER=03)")
    if not (workspace / MANIFEST).exists():
        raise WorkspaceError(f"no workspace at {workspace} yet; run `make lab` first")
    src = matches[0]
    course = _sha256(src)
    dst = workspace / f"{src.stem}.update-{course[:8]}.ipynb"
    if not dst.exists():
        _copy(src, dst)
    manifest = _read_manifest(workspace)
    entry = manifest.setdefault(src.name, {"copied": ""})
    entry["taken"] = course
    _write_manifest(workspace, manifest)
    return dst


_SAY = {
    "copied": "copied into your workspace",
    "restored": "copied again (you had deleted your copy)",
    "updated": "updated to the course's newer version (you had not changed your copy)",
}


def _describe(reports: list[Report]) -> list[str]:
    lines = [f"  {r.name}: {_SAY[r.action]}" for r in reports if r.action in _SAY]
    pending = [r for r in reports if r.action == "update-available"]
    if pending:
        lines.append(
            "A newer version of "
            + ", ".join(f"chapter {r.chapter}" for r in pending)
            + " is in the course; your copy has your changes and stays as it is."
        )
        for r in pending:
            lines.append(f"  to take it beside yours: make lab-update CHAPTER={r.chapter}")
    return lines


def _outside_warning(student: Path, workspace: Path) -> str | None:
    """A warning when the workspace lies outside the folder that holds ``student/`` (``tutorials/``):
    JupyterLab (``make lab``) serves that folder and nothing outside it, and the start page links to
    ``workspace/`` there."""
    root = student.resolve().parent
    if workspace.resolve().is_relative_to(root):
        return None
    return (
        f"warning: the workspace {workspace} lies outside {root}, the folder JupyterLab serves: make lab cannot "
        f"open its notebooks and the start page's links lead elsewhere; choose a folder inside it, e.g. "
        f"LAB_WORKSPACE={root.name}/mywork"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="sync", choices=["sync", "status", "take"])
    parser.add_argument("chapter", nargs="?", help="with take: the chapter, e.g. 03")
    parser.add_argument("--student", type=Path, default=STUDENT, help="the course's student notebooks")
    parser.add_argument("--workspace", type=Path, default=WORKSPACE, help="the learner's workspace")
    args = parser.parse_args(argv)
    try:
        warning = _outside_warning(args.student, args.workspace)
        if warning:
            print(warning, file=sys.stderr)
        if args.command == "take":
            if not args.chapter:
                raise WorkspaceError("name the chapter to take, e.g. make lab-update CHAPTER=03")
            dst = take(args.student, args.workspace, args.chapter)
            print(f"The course's current version is beside yours: {dst}. Your own copy is unchanged.")
            return 0
        reports = (sync if args.command == "sync" else status)(args.student, args.workspace)
    except WorkspaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lines = _describe(reports)
    if args.command == "status":  # every chapter's state, then what to do about pending updates
        lines = [f"  {r.name}: {r.action}" for r in reports] + lines[sum(r.action in _SAY for r in reports) :]
    print(f"Your workspace: {args.workspace}")
    print("\n".join(lines) if lines else "  every notebook is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
