"""cnf_teach.progress: a live bar on a terminal, one log line per interval anywhere else."""

from __future__ import annotations

import io
import logging

import pytest

from cnf_teach.progress import ENV_VAR, Progress, format_seconds, progress_mode, track


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class _Clock:
    """A fake monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cnf_teach.progress"]


def test_mode_follows_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress_mode(stream=_Terminal()) == "bar"
    assert progress_mode(stream=io.StringIO()) == "log"
    assert progress_mode("off", stream=_Terminal()) == "off"
    assert progress_mode("log", stream=_Terminal()) == "log"
    monkeypatch.setenv(ENV_VAR, "log")
    assert progress_mode(stream=_Terminal()) == "log"
    monkeypatch.setenv(ENV_VAR, "off")
    assert progress_mode(stream=_Terminal()) == "off"
    monkeypatch.setenv(ENV_VAR, "bars")
    with pytest.raises(ValueError, match="CNF_TEACH_PROGRESS"):
        progress_mode(stream=_Terminal())
    with pytest.raises(ValueError, match="not one of"):
        progress_mode("fancy")  # type: ignore[arg-type]


def test_a_stream_without_isatty_counts_as_no_terminal() -> None:
    assert progress_mode(stream=object()) == "log"  # type: ignore[arg-type]


def test_terminal_gets_a_live_bar(caplog: pytest.LogCaptureFixture) -> None:
    stream = _Terminal()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"), Progress(10, desc="train", stream=stream) as p:
        for _ in range(10):
            p.update()
            p.set_postfix({"loss": 1.23456, "bpd": 2.5})
    text = stream.getvalue()
    assert p.mode == "bar"
    assert "\r" in text and "train" in text and "10/10" in text
    assert not _messages(caplog), "a terminal got log lines as well as the bar"


def test_non_terminal_gets_log_lines_not_redraws(caplog: pytest.LogCaptureFixture) -> None:
    stream, clock = io.StringIO(), _Clock()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        with Progress(200, desc="train sr", stream=stream, every_seconds=30.0, clock=clock) as p:
            for step in range(200):
                clock.now += 0.5  # 2 steps/s: 100 s in all
                p.update()
                if step % 20 == 0:
                    p.set_postfix({"loss": 3.2, "bpd": 4.5})
    assert stream.getvalue() == "", "nothing may be drawn on a non-terminal"
    lines = _messages(caplog)
    # One line per 30 s (at 30, 60, 90 s) and a closing one.
    assert len(lines) == 4, lines
    first = lines[0]
    assert first.startswith("train sr: 60/200 steps (30%)"), first
    assert "loss=3.2 bpd=4.5" in first
    assert "2 steps/s" in first
    assert "elapsed 0:00:30" in first and "ETA 0:01:10" in first
    assert lines[-1].startswith("train sr: 200/200 steps (100%)") and lines[-1].endswith("(done)")
    assert "ETA" not in lines[-1]
    assert all("\r" not in line for line in lines)


def test_log_every_n_steps(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        p = Progress(100, stream=io.StringIO(), every_steps=25, every_seconds=None, clock=clock)
        for _ in range(100):
            clock.now += 1.0
            p.update()
        p.close()
        p.close()  # closing twice writes nothing more
    lines = _messages(caplog)
    assert [line.split(" ")[0] for line in lines] == ["25/100", "50/100", "75/100", "100/100"]
    assert lines[-1].endswith("(done)") and "ETA" not in lines[-1]


def test_unknown_total_counts_steps_without_eta(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        with Progress(None, desc="train", initial=40, stream=io.StringIO(), every_steps=10, clock=clock) as p:
            for _ in range(10):
                clock.now += 0.5
                p.update()
    lines = _messages(caplog)
    assert lines[0].startswith("train: 50 steps, 2 steps/s"), lines  # the rate counts this run's steps only
    assert all("ETA" not in line and "%" not in line for line in lines)


def test_short_inner_loops_stay_quiet(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        for _ in track(range(5), desc="evaluate", unit="image", leave=False, stream=io.StringIO(), clock=clock):
            clock.now += 1.0
        assert not _messages(caplog), "a five-second inner loop wrote a log line"
        items = list(track(range(5), desc="evaluate", unit="image", leave=False, stream=io.StringIO(), clock=clock))
        assert items == [0, 1, 2, 3, 4]
    # A long inner loop logs, then closes with a final line.
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        caplog.clear()
        loop = track(
            range(6), desc="evaluate", unit="image", leave=False, every_seconds=2.0, stream=io.StringIO(), clock=clock
        )
        for _ in loop:
            clock.now += 1.0
    lines = _messages(caplog)
    assert len(lines) == 3 and lines[0].startswith("evaluate: 2/6 images"), lines
    assert lines[-1].startswith("evaluate: 6/6 images") and lines[-1].endswith("(done)")


def test_disabled_and_off_report_nothing(caplog: pytest.LogCaptureFixture) -> None:
    stream = _Terminal()
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        for kwargs in ({"enabled": False}, {"mode": "off"}):
            with Progress(10, stream=stream, every_steps=1, **kwargs) as p:
                for _ in range(10):
                    p.update()
            assert p.mode == "off"
    assert stream.getvalue() == "" and not _messages(caplog)


def test_bad_arguments_name_the_problem() -> None:
    with pytest.raises(ValueError, match="total"):
        Progress(-1)
    with pytest.raises(ValueError, match="every_seconds"):
        Progress(10, every_seconds=0)
    with pytest.raises(ValueError, match="every_steps"):
        Progress(10, every_steps=0)


def test_format_seconds() -> None:
    assert format_seconds(0) == "0:00:00"
    assert format_seconds(59.6) == "0:01:00"
    assert format_seconds(3723.4) == "1:02:03"


def test_training_in_a_batch_job_logs_lines_not_bars(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine's progress, with stderr captured (not a terminal), as in a batch job's log file."""
    import torch
    from torch.utils.data import TensorDataset

    from cnf_teach.engine import TrainConfig, Trainer, make_loader
    from cnf_teach.flows import MultiScaleFlow

    def loss_fn(model: torch.nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        (y,) = batch  # [B, 1, 4, 4]
        bpd = -model.log_prob(y + torch.rand_like(y) / 8).mean() / (16 * 0.6931471805599453)
        return bpd, {"bpd": bpd.item()}

    data = TensorDataset(torch.randint(0, 8, (12, 1, 4, 4), generator=torch.Generator().manual_seed(1)).float() / 8)
    cfg = TrainConfig(steps=4, lr=1e-2, progress=True, log_every=2, device="cpu")
    with caplog.at_level(logging.INFO, logger="cnf_teach.progress"):
        Trainer(MultiScaleFlow(1, levels=1, steps=1, hidden=8), loss_fn, make_loader(data, batch_size=4), cfg).fit()
    lines = _messages(caplog)
    assert len(lines) == 1 and lines[0].startswith("train "), lines
    assert "4/4 steps (100%)" in lines[0] and "bpd=" in lines[0] and lines[0].endswith("(done)")
    assert "\r" not in capsys.readouterr().err, "a progress bar was drawn on a non-terminal"
