"""The CLI's plumbing and the toy command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnf_teach.cli import main


def test_toy_command_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "toy.json"
    assert main(["toy", "--steps", "150", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["steps"] == 150
    assert figures["model_nll"] < figures["true_nll"] + 1.0
    assert "test NLL" in capsys.readouterr().out


def test_bad_argument_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["toy", "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: cnf-teach" in capsys.readouterr().out
