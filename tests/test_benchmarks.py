"""The benchmark scripts run end to end in their --smoke mode and write JSON of the documented shape.

Only the structure and the sanity of the figures are checked here (finite, positive,
parameter counts equal where the configurations are equal); speed itself is measured by
the scripts, never asserted in a test.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

BENCH = REPO / "benchmarks"


def _run(script: str, tmp_path: Path, *extra: str) -> object:
    out = tmp_path / f"{Path(script).stem}.json"
    cmd = [sys.executable, str(BENCH / script), "--smoke", "--device", "cpu", "--threads", "1", "--json", str(out)]
    proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "|---" in proc.stdout  # a table was printed
    return json.loads(out.read_text())


def _positive(v: object) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v) and v > 0


def test_peers_smoke(tmp_path: Path) -> None:
    if importlib.util.find_spec("normflows") is None:
        pytest.skip("normflows is not installed (pip install 'cnf_teach[bench]')")
    rows = _run("peers.py", tmp_path)
    assert isinstance(rows, list) and rows
    expected_peers = {"normflows"} | ({"FrEIA"} if importlib.util.find_spec("FrEIA") else set())
    assert {r["peer"] for r in rows} == expected_peers
    assert {(r["peer"], r["measure"]) for r in rows} == {
        (p, m) for p in expected_peers for m in ("train_step", "sample")
    }
    # Like with like: the peer with learned 1x1 convolutions against cnf_teach's learned ones,
    # FrEIA (fixed rotations) against cnf_teach built with fixed rotations.
    ours = {"normflows": "cnf_teach", "FrEIA": "cnf_teach_fixed"}
    assert {r["peer"]: r["ours"] for r in rows} == {p: ours[p] for p in expected_peers}
    for r in rows:
        assert {"peer", "ours", "measure", "ratio", "ours_s", "peer_s"} <= set(r)
        assert all(_positive(r[k]) for k in ("ratio", "ours_s", "peer_s")), r
        q1, q3 = r["ratio_q1_q3"]
        assert 0 < q1 <= r["ratio"] <= q3
        assert r["reps"] >= 10
    meta = json.loads((tmp_path / "peers.meta.json").read_text())
    # Same flow in both libraries with learned 1x1 convolutions: exactly the same parameter count.
    assert meta["params"]["cnf_teach"] == meta["params"]["normflows"] > 0
    if "FrEIA" in expected_peers:  # fixed rotations in both: equal counts, fewer than the learned pair
        assert meta["params"]["cnf_teach_fixed"] == meta["params"]["FrEIA"] < meta["params"]["cnf_teach"]
    assert all(math.isfinite(v) for v in meta["bits_per_dim_at_init"].values())


def test_scaling_smoke(tmp_path: Path) -> None:
    result = _run("scaling.py", tmp_path)
    flow = result["flow"]
    assert [r["hr"] for r in flow if r["sweep"] == "hr"] == [8, 16]
    assert [r["steps"] for r in flow if r["sweep"] == "steps"] == [1, 2]
    for r in flow:
        assert _positive(r["step_s"]) and _positive(r["parameters"])
        assert isinstance(r["peak_mib"], float) and r["peak_mib"] >= 0
    depth = [r["parameters"] for r in flow if r["sweep"] == "steps"]
    assert depth[0] < depth[1]  # more steps, more parameters
    conv = result["conv1x1"]
    assert [r["channels"] for r in conv] == [8, 16]
    for r in conv:
        assert all(_positive(r[k]) for k in ("slogdet_param_s", "lu_param_s", "param_ratio", "layer_ratio"))


def test_numerics_smoke(tmp_path: Path) -> None:
    result = _run("numerics.py", tmp_path)
    rows = result["rows"]
    assert [r["config"] for r in rows] == ["sr_smoke", "drive_smoke"]
    for r in rows:
        # float32 round trips of a small flow are accurate to a few ulps of the data, float64 to ~1e-15.
        assert 0 <= r["round_trip"] < 1e-4
        assert 0 <= r["round_trip_f64"] < 1e-12
        assert 0 <= r["logdet_rel_err"] < 1e-4
        assert r["randomized_layers"] > 0  # the couplings were made non-trivial
        assert r["logdet_per_dim"] > 0


def test_flow_overhead_smoke(tmp_path: Path) -> None:
    if importlib.util.find_spec("cnf_teach.super_resolution") is None:
        pytest.skip("cnf_teach.super_resolution (the SR CNF and its baseline) is not in this checkout")
    result = _run("flow_overhead.py", tmp_path)
    assert [r["measure"] for r in result["rows"]] == ["train_step", "predict"]
    for r in result["rows"]:
        assert all(_positive(r[k]) for k in ("ratio", "cnf_s", "baseline_s")), r
        q1, q3 = r["ratio_q1_q3"]
        assert 0 < q1 <= r["ratio"] <= q3
        assert r["reps"] >= 10
    assert result["config"]["name"] == "tiny"
    assert all(_positive(v) for v in result["params"].values())


def test_flow_share_smoke(tmp_path: Path) -> None:
    for module in ("cnf_teach.super_resolution", "cnf_teach.vessels"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not in this checkout")
    result = _run("flow_share.py", tmp_path, "--reps", "3", "--profile")
    rows = result["rows"]
    assert [r["model"] for r in rows] == ["sr-tiny", "sr-small", "seg-tiny", "seg-small"]
    for r in rows:
        assert r["networks"] >= 5, r  # conditioner, coupling nets, split and top priors at least
        assert all(_positive(r[k]) for k in ("full_s", "flow_s", "flow_share")), r
        # Without its networks the step does strictly less work; its share is a fraction.
        assert 0 < r["flow_share"] < 1, r
        q1, q3 = r["flow_share_q1_q3"]
        assert 0 < q1 <= r["flow_share"] <= q3
        assert r["flow_ops"] and all(0 < op["self_share"] <= 1 for op in r["flow_ops"])


def test_compile_step_smoke(tmp_path: Path) -> None:
    # aot_eager traces forward and backward as Inductor would, without generating C++ (seconds, not minutes).
    result = _run("compile_step.py", tmp_path, "--models", "seg-tiny", "--reps", "3", "--backend", "aot_eager")
    rows = result["rows"]
    assert [r["model"] for r in rows] == ["seg-tiny"]
    for r in rows:
        assert all(_positive(r[k]) for k in ("eager_s", "compiled_s", "speedup")), r
        assert r["compile_s"] >= 0 and r["compile_warm_s"] >= 0
        for run in ("short", "long"):
            total = r[run]
            assert total["steps"] > 0 and _positive(total["eager_s"]) and _positive(total["compiled_s"])
            assert math.isclose(total["x"], total["eager_s"] / total["compiled_s"])
