"""Packaging: pyproject and environment.yml agree; the console script answers."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import yaml
from conftest import REPO

import cnf_teach


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_what_pyproject_lists() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).startswith("python>=3.10") for d in deps)
    assert project["requires-python"] == ">=3.10"
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    runtime = [p for p in pip if not p.startswith("-e")]
    assert sorted(runtime) == sorted(project["dependencies"])
    editable = [p for p in pip if p.startswith("-e")]
    assert editable == ["-e .[all]"]
    extras = project["optional-dependencies"]
    assert set(extras) >= {"test", "docs", "lab", "all"}
    named_in_all = set(re.search(r"\[(.*)\]", extras["all"][0]).group(1).split(","))
    assert named_in_all == set(extras) - {"all"}


def test_version_agrees() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert cnf_teach.__version__ == project["version"]


def _cli() -> list[str]:
    exe = shutil.which("cnf-teach", path=str(REPO / ".venv" / "bin")) or shutil.which("cnf-teach")
    return [exe] if exe else [sys.executable, "-m", "cnf_teach"]


def test_console_script_help_and_version() -> None:
    out = subprocess.run([*_cli(), "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: cnf-teach" in out and "toy" in out
    out = subprocess.run([*_cli(), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"cnf-teach {cnf_teach.__version__}"
    out = subprocess.run([sys.executable, "-m", "cnf_teach", "--version"], capture_output=True, text=True, check=True)
    assert cnf_teach.__version__ in out.stdout
