"""The vessel benchmark scripts run end to end in their --smoke mode and write JSON of the documented shape."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _run(script: str, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / f"{Path(script).stem}.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / script), "--smoke", "--device", "cpu", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([*cmd, "--json", str(out), *extra], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "|---" in proc.stdout  # a table was printed
    return json.loads(out.read_text())


def test_seg_reproduction_smoke(tmp_path: Path) -> None:
    result = _run("seg_reproduction.py", tmp_path, "--figures", str(tmp_path / "figs"))
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == {"cnf_binary", "cnf_uniform", "baseline"}
    for r in rows.values():
        assert r["steps"] == 3 and r["params"] > 0
        assert math.isfinite(r["bits_per_dim"]) and r["bits_per_dim"] > 0
        assert 0 <= r["max_f"] <= 1 and 0 <= r["sample_f"] <= 1
        assert 0 <= r["sample_precision"] <= 1 and 0 <= r["sample_recall"] <= 1
        assert -1 <= r["real_retina_r_frangi"] <= 1
    assert 0 < result["human"]["human_f"] <= 1
    for name in ("seg_pr_curves.png", "seg_samples.png", "seg_real_retina.png"):
        assert (tmp_path / "figs" / name).stat().st_size > 1000
    # A subset of the models, as run one process per model side by side.
    alone = _run("seg_reproduction.py", tmp_path, "--models", "baseline")
    assert [r["model"] for r in alone["rows"]] == ["baseline"]


def test_gpu_drive_smoke(tmp_path: Path) -> None:
    result = _run("gpu_drive.py", tmp_path)
    row = result["row"]
    assert row["image"] == "32x32" and row["batch"] == 2
    assert row["step_s"] > 0 and row["sample_s"] > 0
    assert row["steps_2000_epochs"] == 20000
    assert math.isclose(row["train_hours"], 20000 * row["step_s"] / 3600)
    assert math.isfinite(row["train_bpd_last"])


def test_seg_floors_smoke(tmp_path: Path) -> None:
    result = _run("seg_floors.py", tmp_path)
    rows = {r["model"]: r["bpd_fov"] for r in result["rows"]}
    assert len(rows) == 5 and all(math.isfinite(v) and v >= 0 for v in rows.values())
    exact = result["exact"]
    # The exact marginals score the factorized floor, within a few standard errors of the Monte-Carlo mean.
    assert abs(exact["score"] - exact["floor"]) < 4 * exact["se"] + 1e-9
    # Without the pixel noise the probe is named so, on the same retinas (same floors).
    clean = _run("seg_floors.py", tmp_path, "--no-pixel-noise")
    names = [r["model"] for r in clean["rows"]]
    assert any(n.endswith("no pixel noise") for n in names)
    assert clean["rows"][3]["bpd_fov"] == result["rows"][3]["bpd_fov"]  # the test floors are unchanged
