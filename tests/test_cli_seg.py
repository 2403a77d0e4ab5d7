"""``cnf-teach seg``: info, synth, train (with resume), eval, sample, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnf_teach.cli import main
from cnf_teach.engine import load_checkpoint, save_checkpoint


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seg") / "drive"
    assert main(["seg", "synth", "--out", str(root), "--train", "4", "--test", "2", "--size", "32"]) == 0
    return root


def test_info_prints_and_writes_the_summary(drive: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "info.json"
    assert main(["seg", "info", "--data", str(drive), "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["training"]["images"] == 4 and summary["test"]["images"] == 2
    assert summary["training"]["height"] == 32 and summary["training"]["width"] == 32
    assert 0.01 < summary["test"]["vessel_fraction_in_fov"] < 0.3 and 0.5 < summary["test"]["fov_fraction"] < 0.9
    assert "vessels" in capsys.readouterr().out


def test_info_names_the_broken_file(drive: Path, tmp_path: Path, capsys) -> None:
    assert main(["seg", "info", "--data", str(tmp_path / "missing")]) == 2
    _one_line_error(capsys, "missing")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(drive, broken)
    (broken / "test" / "mask" / "02_test_mask.gif").write_bytes(b"not a gif")
    assert main(["seg", "info", "--data", str(broken)]) == 2
    _one_line_error(capsys, "02_test_mask.gif")


def test_train_resume_eval_sample(drive: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    args = ["seg", "train", "--data", str(drive), "--out", str(run), "--checkpoint-every", "2", "--device", "cpu"]
    assert main([*args, "--steps", "3"]) == 0
    capsys.readouterr()
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["task"] == "seg" and ckpt["step"] == 3 and ckpt["extra"]["model"] == "cnf_binary"
    assert main([*args, "--steps", "3"]) == 2  # would overwrite the run
    _one_line_error(capsys, "--resume")
    assert main([*args, "--steps", "5", "--resume", "--no-progress"]) == 0
    capsys.readouterr()
    assert load_checkpoint(run / "last.pt")["step"] == 5
    assert main([*args, "--steps", "6", "--resume", "--model", "baseline"]) == 2
    _one_line_error(capsys, "cnf_binary")

    out = tmp_path / "eval.json"
    figs = tmp_path / "figs"
    cmd = ["seg", "eval", "--checkpoint", str(run / "last.pt"), "--data", str(drive), "--samples", "3"]
    assert main([*cmd, "--json", str(out), "--figures", str(figs), "--device", "cpu"]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "cnf_binary" and result["samples"] == 3 and result["bound_samples"] == 1
    assert result["bpd"] > 0 and 0 <= result["max_f"] <= 1 and 0 < result["human_f"] <= 1
    assert (figs / "pr_curves.png").stat().st_size > 1000 and (figs / "segmentations.png").stat().st_size > 1000
    # --bound-samples K: the importance-weighted bound of the same model, recorded and printed with its K.
    out_k = tmp_path / "eval_k.json"
    assert main([*cmd, "--bound-samples", "4", "--json", str(out_k), "--device", "cpu"]) == 0
    assert "(bound, 4 dequantization sample(s))" in capsys.readouterr().out
    result_k = json.loads(out_k.read_text())
    assert result_k["bound_samples"] == 4 and 0 < result_k["bpd"] < 2 * result["bpd"]
    assert main([*cmd, "--bound-samples", "0"]) == 2
    _one_line_error(capsys, "--bound-samples")

    png = tmp_path / "sample.png"
    cmd = ["seg", "sample", "--checkpoint", str(run / "last.pt"), "--out", str(png), "--samples", "2", "--force"]
    assert main([*cmd, "--data", str(drive), "--index", "1", "--device", "cpu"]) == 0
    assert png.stat().st_size > 1000
    assert main([*cmd, "--retina", "--size", "32", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main([*cmd, "--data", str(drive), "--index", "7"]) == 2
    _one_line_error(capsys, "--index")


def test_baseline_trains_from_the_cli(drive: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "m.json"
    cmd = ["seg", "train", "--model", "baseline", "--data", str(drive), "--out", str(tmp_path / "b"), "--steps", "2"]
    assert main([*cmd, "--no-augment", "--device", "cpu", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["model"] == "baseline"
    # The shipped models' exact mirror-image augmentation is one flag away.
    flip = ["seg", "train", "--model", "baseline", "--data", str(drive), "--out", str(tmp_path / "f"), "--steps", "2"]
    from cnf_teach.data.augment import FlipAugment, JointAugment

    drawn = {"flip": 0, "warp": 0}

    def counted(name: str, draw):  # noqa: ANN001, ANN202 - wraps a sampler, counting its calls
        def wrapper(self, generator=None):  # noqa: ANN001, ANN202
            drawn[name] += 1
            return draw(self, generator)

        return wrapper

    monkeypatch.setattr(FlipAugment, "sample_flips", counted("flip", FlipAugment.sample_flips))
    monkeypatch.setattr(JointAugment, "sample_matrix", counted("warp", JointAugment.sample_matrix))
    assert main([*flip, "--augment", "flip", "--device", "cpu"]) == 0
    assert drawn["flip"] > 0 and drawn["warp"] == 0


def test_other_tasks_checkpoint_is_rejected(drive: Path, tmp_path: Path, capsys) -> None:
    fake = save_checkpoint({"task": "sr", "model": {}, "extra": {}}, tmp_path / "sr.pt")
    assert main(["seg", "eval", "--checkpoint", str(fake), "--data", str(drive)]) == 2
    _one_line_error(capsys, "'sr'")
    assert main(["seg", "eval", "--checkpoint", str(tmp_path / "none.pt"), "--data", str(drive)]) == 2
    _one_line_error(capsys, "not found")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"nonsense")
    assert main(["seg", "sample", "--checkpoint", str(garbage), "--retina", "--out", str(tmp_path / "x.png")]) == 2
    _one_line_error(capsys, "garbage.pt")


def test_bad_arguments_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["seg", "synth", "--out", str(tmp_path), "--train", "0", "--test", "0"]) == 2
    _one_line_error(capsys, "--train")
    assert main(["seg", "train", "--out", str(tmp_path / "r"), "--steps", "0"]) == 2
    _one_line_error(capsys, "--steps")
    assert main(["seg", "train", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "nope")]) == 2
    _one_line_error(capsys, "nope")


@pytest.fixture(scope="module")
def drive64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive

    root = tmp_path_factory.mktemp("seg64") / "drive"
    return make_synthetic_drive(root, num_train=4, num_test=2, config=RetinaConfig(height=64, width=64), mc_samples=0)


def test_cpu_path_downscale_and_crop(drive64: Path, tmp_path: Path, capsys, caplog) -> None:
    """``--downscale`` and ``--crop`` (the CPU path on real DRIVE): crops in training, whole images in evaluation."""
    run = tmp_path / "run"
    args = ["seg", "train", "--data", str(drive64), "--out", str(run), "--device", "cpu", "--no-progress"]
    args += ["--downscale", "2", "--crop", "16", "--batch-size", "2", "--no-augment"]
    with caplog.at_level("INFO", logger="cnf_teach.commands"):
        assert main([*args, "--steps", "2"]) == 0
    assert "random 16x16 windows of 32x32 images" in caplog.text
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["extra"]["downscale"] == 2.0 and ckpt["extra"]["crop"] == 16
    assert main([*args, "--steps", "3", "--resume"]) == 0
    assert load_checkpoint(run / "last.pt")["extra"]["downscale"] == 2.0
    capsys.readouterr()

    # Evaluation: whole images, at the training run's scale unless --downscale says otherwise.
    out = tmp_path / "eval.json"
    cmd = ["seg", "eval", "--checkpoint", str(run / "last.pt"), "--data", str(drive64), "--samples", "2"]
    assert main([*cmd, "--device", "cpu", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ("per image pixel (32x32)", "per field-of-view pixel", "per padded pixel (32x32)", "downscale 2"):
        assert label in text, text
    result = json.loads(out.read_text())
    assert result["downscale"] == 2.0 and result["image_size"] == [32, 32] and result["padded_size"] == [32, 32]
    # The same total bits over fewer pixels (the FOV) or as many (no padding needed at 32x32).
    assert result["bpd_fov"] > result["bpd"] > 0 and result["bpd_padded"] == pytest.approx(result["bpd"])
    assert main([*cmd, "--device", "cpu", "--json", str(out), "--downscale", "1"]) == 2  # would replace the first
    assert main([*cmd, "--device", "cpu", "--json", str(out), "--downscale", "1", "--force"]) == 0
    result = json.loads(out.read_text())
    assert result["downscale"] == 1.0 and result["image_size"] == [64, 64]
    png = tmp_path / "s.png"
    assert main(["seg", "sample", "--checkpoint", str(run / "last.pt"), "--data", str(drive64), "--out", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_cpu_path_bad_values_are_one_line(drive64: Path, tmp_path: Path, capsys) -> None:
    base = ["seg", "train", "--data", str(drive64), "--out", str(tmp_path / "r"), "--steps", "1"]
    assert main([*base, "--crop", "6"]) == 2
    _one_line_error(capsys, "--crop", "multiple of 4")
    assert main([*base, "--downscale", "0.5"]) == 2
    _one_line_error(capsys, "--downscale")
    assert main(["seg", "eval", "--pretrained", "seg-cnf-binary", "--data", str(drive64), "--downscale", "0"]) == 2
    _one_line_error(capsys, "--downscale")
