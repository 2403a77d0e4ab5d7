"""`make lab` really starts JupyterLab on the tutorials (on 127.0.0.1, then stopped)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from conftest import REPO

pytestmark = pytest.mark.lab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_serves_the_tutorials(tmp_path) -> None:
    if not (REPO / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("no .venv with jupyter: run `make setup` first")
    port = _free_port()
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token= --ServerApp.password="
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    workspace = tmp_path / "workspace"  # the learner's copies: here, not in the repository's tutorials/workspace
    proc = subprocess.Popen(
        ["make", "-s", "lab", f"LAB_ARGS={args}", f"LAB_WORKSPACE={workspace}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        body = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as r:
                    assert r.status == 200
                    body = r.read().decode()
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"make lab exited early:\n{proc.stdout.read().decode()[-2000:]}")
                time.sleep(1)
        assert "JupyterLab" in body
        # The start page opens first: / leads to it.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.geturl().endswith("/lab/tree/00_start_here.md"), r.geturl()
        # The server's root is tutorials/: its contents API lists that folder.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as r:
            listing = r.read().decode()
        expected = sorted(p.name for p in (REPO / "tutorials").iterdir() if not p.name.startswith("."))
        assert all(name in listing for name in expected[:3])
        # make lab copied the student notebooks into the workspace before JupyterLab started.
        students = sorted(p.name for p in (REPO / "tutorials" / "student").glob("0*.ipynb"))
        assert students and sorted(p.name for p in workspace.glob("0*.ipynb")) == students
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
