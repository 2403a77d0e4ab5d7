"""A learner's first steps in JupyterLab, in a real browser (Debian's Chromium through Playwright).

JupyterLab is started with the command ``make lab`` runs (read from ``make -n lab``), on a free
port of 127.0.0.1 with a token, in a temporary copy of the tutorials so that nothing in the
repository is written. The test then walks the path the start page describes:

1. ``/`` opens the start page ``00_start_here.md``, rendered; its link opens the learner's workspace copy
   of notebook 01 (made from the student version as ``make lab`` makes it);
2. *Run All Cells* (and, after each stop, *Run Selected Cell and All Below*): every graded test
   cell fails with the exercise's ``NotImplementedError`` and no cell fails otherwise;
3. the solution of the first exercise (from the solution notebook, found by its nbgrader
   ``grade_id``) is pasted into its answer cell, whose test cells then pass when run;
4. nbgrader's **Validate** button in the notebook toolbar reports the other exercises' test cells
   as failing and none of the solved one's.

The console must stay free of errors, and the server is stopped at the end. Screenshots go to
``$CNF_TEACH_SCREENSHOTS`` when set, else to a temporary folder (its path is printed).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browsing import launch_chromium, screenshot_folder
from conftest import REPO
from test_lab import _free_port

pytestmark = pytest.mark.lab

NOTEBOOK = "01_change_of_variables.ipynb"
START_PAGE = "00_start_here.md"
TOKEN = "cnf-teach-browser-test"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _exercises(nb: dict) -> list[tuple[int, str, list[int]]]:
    """``(index of the answer cell, its grade_id, indices of its graded code cells)`` per exercise.

    An exercise's test cells are the graded code cells after its answer cell, up to the next one.
    """
    out: list[tuple[int, str, list[int]]] = []
    for i, cell in enumerate(nb["cells"]):
        meta = _nbgrader(cell)
        if cell["cell_type"] != "code":
            continue
        if meta.get("solution") and not meta.get("grade"):
            out.append((i, meta["grade_id"], []))
        elif meta.get("grade") and out:
            out[-1][2].append(i)
    return out


def _solution_source(grade_id: str) -> str:
    """The body of an answer cell in the solution notebook, without nbgrader's solution markers."""
    nb = json.loads((REPO / "tutorials" / NOTEBOOK).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if _nbgrader(cell).get("grade_id") == grade_id:
            lines = "".join(cell["source"]).splitlines()
            return "\n".join(line for line in lines if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    raise AssertionError(f"the solution notebook has no cell with grade_id {grade_id!r}")


def _lab_command(venv: Path) -> list[str]:
    """The command line of ``make lab``, as make would run it, for a free port and a token."""
    port = _free_port()
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={TOKEN} --ServerApp.password="
    dry = subprocess.run(
        ["make", "-s", "-n", "lab", f"VENV={venv}", f"LAB_ARGS={args}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.replace("\\\n", " ")
    lines = [line for line in dry.splitlines() if re.search(r"/jupyter lab\b", line)]
    assert len(lines) == 1, f"`make -n lab` shows no single `jupyter lab` command:\n{dry}"
    return shlex.split(lines[0])


def test_start_page_lists_every_chapter_with_its_run_time() -> None:
    """Each chapter 01-07 is linked in both versions, with the run time its first cell states."""
    page = (REPO / "tutorials" / START_PAGE).read_text(encoding="utf-8")
    chapters = sorted(p for p in (REPO / "tutorials").glob("0[1-7]_*.ipynb"))
    assert len(chapters) == 7
    for nb_path in chapters:
        first = "".join(json.loads(nb_path.read_text(encoding="utf-8"))["cells"][0]["source"])
        stated = re.search(r"\*\*Expected run time:\*\*\s*((?:about|under|well under) [\d.]+ (?:s|min))\b", first)
        assert stated, f"{nb_path.name} does not state its expected run time in its first cell"
        rows = [line for line in page.splitlines() if line.startswith("|") and f"(workspace/{nb_path.name})" in line]
        row = rows[0] if rows else None
        assert row is not None, f"{START_PAGE} does not link workspace/{nb_path.name}"
        assert f"]({nb_path.name})" in row, f"{START_PAGE} does not link the solution {nb_path.name}"
        assert row.rstrip(" |").endswith(stated.group(1)), f"{START_PAGE} gives {nb_path.name} another run time"
    assert "capstone" in page and "(README.md)" in page, "the start page should point to the capstone"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab as ``make lab`` starts it, in a copy of the tutorials: ``(base URL, copy)``."""
    venv = REPO / ".venv"
    if not (venv / "bin" / "jupyter").exists():
        pytest.skip("no .venv with jupyter: run `make setup` first")
    work = tmp_path_factory.mktemp("lab")
    tutorials = work / "tutorials"
    (tutorials / "student").mkdir(parents=True)
    for name in (START_PAGE, "README.md"):
        shutil.copy2(REPO / "tutorials" / name, tutorials / name)
    shutil.copytree(REPO / "tutorials" / "tools" / "jupyterlab", tutorials / "tools" / "jupyterlab")
    shutil.copy2(REPO / "tutorials" / "student" / NOTEBOOK, tutorials / "student" / NOTEBOOK)
    # The learner's workspace, as `make lab` creates it before JupyterLab starts.
    subprocess.run(
        [str(venv / "bin" / "python"), str(REPO / "tutorials" / "tools" / "workspace.py"), "sync"]
        + ["--student", str(tutorials / "student"), "--workspace", str(tutorials / "workspace")],
        check=True,
        capture_output=True,
    )
    shutil.copy2(REPO / "nbgrader_config.py", work / "nbgrader_config.py")  # read from the server's folder
    command = _lab_command(venv)
    port = next(int(a.split("=", 1)[1]) for a in command if a.startswith("--port="))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's own inline figures
    env.update(
        CNF_TEACH_FAST="1",
        JUPYTER_CONFIG_DIR=str(work / "config"),
        JUPYTER_DATA_DIR=str(work / "data"),
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(work / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
    )
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(work / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, tutorials
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{base}/api/status", timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from launch_chromium(CHROMIUM_FLAGS)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_folder(tmp_path_factory)


def _run_from(page: object, cells: object, index: int | None) -> None:
    """Run All Cells (``index=None``) or Run Selected Cell and All Below from cell ``index``; wait until done."""
    if index is None:
        item = "Run All Cells"
    else:
        cells.nth(index).locator(".jp-InputArea-prompt").click()
        item = "Run Selected Cell and All Below"
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel:visible").filter(has_text=re.compile(f"^{item}$")).click()
    _wait_until_run(page, index)


# True when cell `index` (null: the first code cell) shows an execution count and no cell is queued or running.
_RUN_DONE = """([index]) => {
    const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')];
    const code = cells.filter(c => c.classList.contains('jp-CodeCell'));
    const prompt = c => (c.querySelector('.jp-InputArea-prompt')?.textContent || '');
    const target = index === null ? code[0] : cells[index];
    return /\\[\\d+\\]/.test(prompt(target)) && !code.some(c => prompt(c).includes('*'));
}"""


# Each cell of the open notebook: its input prompt ("[3]:", "[*]:", "[ ]:") and the text of its outputs.
_CELLS = """() => {
    const cells = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
    return [...cells].map(c => ({
        prompt: c.querySelector('.jp-InputArea-prompt')?.textContent || '',
        outputs: [...c.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent),
    }));
}"""


def _wait_until_run(page: object, index: int | None) -> None:
    page.wait_for_function(_RUN_DONE, arg=[index], timeout=240_000, polling=500)


def _save(page: object, path: Path) -> dict:
    """Save the notebook (Ctrl+S), wait until the file on disk is rewritten and the tab is clean; return it."""
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached", timeout=60_000)
    deadline = time.monotonic() + 60
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    return json.loads(path.read_text(encoding="utf-8"))


def test_learner_path_in_jupyterlab(lab: tuple[str, Path], browser: object, shots: Path) -> None:
    base, tutorials = lab
    repo_student = REPO / "tutorials" / "student" / NOTEBOOK
    before = repo_student.read_bytes()
    copy = tutorials / "workspace" / NOTEBOOK
    nb = json.loads(copy.read_text(encoding="utf-8"))
    exercises = _exercises(nb)
    assert len(exercises) >= 2, "notebook 01 should have at least two exercises"
    graded = [i for _, _, tests in exercises for i in tests]

    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    start = time.perf_counter()

    # 1. The start page opens first, rendered, and leads to the student version of notebook 01.
    page.goto(f"{base}/?token={TOKEN}", wait_until="domcontentloaded", timeout=180_000)
    landing = page.locator(".jp-RenderedMarkdown", has=page.locator("h1", has_text="Start here"))
    landing.wait_for(timeout=180_000)
    assert page.url.startswith(f"{base}/lab/tree/{START_PAGE}")
    text = landing.inner_text()
    for needed in ("student", "Validate", "nbgrader validate", "make serve", "http://127.0.0.1:8000", "capstone"):
        assert needed in text, f"the start page does not mention {needed!r}"
    page.screenshot(path=str(shots / "lab-start-page.png"))
    landing.get_by_role("link", name=f"workspace/{NOTEBOOK}", exact=True).click()

    # 2. Run everything: each graded test cell fails with the exercise's NotImplementedError.
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=120_000)
    cells = panel.locator(".jp-Notebook .jp-Cell")
    page.wait_for_function(  # cells are attached while the browser is idle
        "([n]) => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length >= n",
        arg=[len(nb["cells"])],
        timeout=180_000,
    )
    assert cells.count() == len(nb["cells"]), "the notebook in the browser and on disk differ"
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    _run_from(page, cells, None)
    for _ in range(len(code)):  # JupyterLab stops at an error: go on from the next cell not yet run
        state = page.evaluate(_CELLS)
        waiting = [i for i in code if not re.search(r"\[\d+\]", state[i]["prompt"])]
        if not waiting:
            break
        _run_from(page, cells, waiting[0])
    state = page.evaluate(_CELLS)
    for i in graded:
        output = state[i]["outputs"]
        assert any("NotImplementedError" in o for o in output), f"graded cell {i} did not fail as expected: {output}"
    ran = _save(page, copy)
    for i, cell in enumerate(ran["cells"]):
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                assert out["ename"] == "NotImplementedError", f"cell {i} failed with {out['ename']}: {out['evalue']}"
        if i in graded:
            assert any(o["output_type"] == "error" for o in cell["outputs"]), f"graded cell {i} passed unanswered"

    # 3. Paste the solution of the first exercise into its answer cell; its tests then pass.
    answer, grade_id, solved = exercises[0]
    solution = _solution_source(grade_id)
    editor = cells.nth(answer).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(solution)
    page.keyboard.press("Escape")
    for i in [answer, *solved]:
        cells.nth(i).locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Control+Enter")
        _wait_until_run(page, i)
        output = page.evaluate(_CELLS)[i]["outputs"]
        assert not any("Error" in o for o in output), f"cell {i} still fails after pasting the solution: {output}"

    # 4. Validate: the solved exercise passes, every other one fails.
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    dialog.wait_for(timeout=240_000)
    report = dialog.locator(".jp-Dialog-body")
    report.locator("p").first.wait_for()
    page.screenshot(path=str(shots / "lab-validate-report.png"))
    failed = report.locator("pre").all_inner_texts()
    report_text = report.inner_text()
    for i in graded:
        source = "".join(nb["cells"][i]["source"]).strip()
        shown = any(f.strip() == source for f in failed)
        if i in solved:
            assert not shown, f"Validate reports the solved exercise's test cell {i} as failing:\n{report_text[:3000]}"
        else:
            assert shown, f"Validate does not report the unanswered test cell {i} as failing:\n{report_text[:3000]}"
    assert report_text.count("The following cell failed") == len(graded) - len(solved), report_text[:3000]
    dialog.get_by_role("button", name="Ok").click()

    saved = json.loads(copy.read_text(encoding="utf-8"))
    assert "".join(saved["cells"][answer]["source"]).strip() == solution.strip(), "the pasted solution was not saved"
    assert not errors, f"console errors in JupyterLab: {errors}"
    assert repo_student.read_bytes() == before, "the test wrote into tutorials/student/"
    assert (tutorials / "student" / NOTEBOOK).read_bytes() == before, "saving wrote into the course's student/"
    page.close()
    print(f"\nlearner's path in JupyterLab: {time.perf_counter() - start:.0f} s")
