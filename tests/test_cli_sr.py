"""``cnf-teach sr``: train, eval (Table 2 layout, JSON), sample, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnf_teach.cli import main
from cnf_teach.engine import load_checkpoint, save_checkpoint


def _write_images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        base = 120 + 60 * np.sin(xx / (3 + i)) + 40 * np.cos(yy / (4 + i))
        img = np.stack([base, base * 0.8 + 20, 255 - base], axis=2) + rng.normal(0, 8, (size, size, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sr_cli")
    train_dir = _write_images(root / "train", 3, 40)
    test_dir = _write_images(root / "SetA", 2, 36, seed=1)
    out = root / "run"
    args = ["sr", "train", "--config", "tiny", "--data", str(train_dir), "--steps", "2", "--batch-size", "2"]
    args += ["--patch", "16", "--out", str(out), "--device", "cpu", "--json", str(root / "train.json")]
    assert main(args) == 0
    return {"root": root, "train": train_dir, "test": test_dir, "ckpt": out / "last.pt", "json": root / "train.json"}


def _error(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert match in err, err


def test_train_writes_an_sr_checkpoint(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = load_checkpoint(trained["ckpt"])
    assert ckpt["task"] == "sr" and ckpt["step"] == 2
    assert ckpt["extra"]["kind"] == "cnf" and ckpt["extra"]["sr_config"]["name"] == "tiny"
    metrics = json.loads(trained["json"].read_text())
    assert metrics["step"] == 2 and 0 < metrics["bpd"] < 16


def test_resume_continues_to_more_steps(trained: dict[str, Path], tmp_path: Path) -> None:
    args = ["sr", "train", "--config", "tiny", "--data", str(trained["train"]), "--steps", "3", "--batch-size", "2"]
    args += ["--patch", "16", "--out", str(tmp_path), "--device", "cpu", "--resume", str(trained["ckpt"])]
    assert main(args) == 0
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3


def test_eval_prints_table_2_and_writes_json(trained: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = trained["root"] / "eval.json"
    argv = ["sr", "eval", "--checkpoint", str(trained["ckpt"]), "--data", str(trained["test"]), "--scale", "2"]
    assert main([*argv, "--json", str(out), "--device", "cpu", "--temperature", "0"]) == 0
    text = capsys.readouterr().out
    assert "bpd" in text and "PSNR-Y" in text and "SetA" in text and "CNF (tau=0)" in text
    figures = json.loads(out.read_text())
    row = figures["SetA"]
    assert set(row) == {"bpd_protocol", "psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "bpd", "images"}
    assert row["bpd_protocol"] == "whole"  # 36-pixel images are smaller than the paper's 128-pixel crops
    assert "padding for PSNR/SSIM: square" in text
    assert row["images"] == 2 and 0 < row["bpd"] < 16 and 0 < row["psnr_y"] < 100 and -1 <= row["ssim_y"] <= 1


def test_eval_protocol_flags(trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--protocol``, ``--crops``, ``--crop-size``: seeded random crops by default, whole images as the option."""
    argv = ["sr", "eval", "--checkpoint", str(trained["ckpt"]), "--data", str(trained["test"]), "--device", "cpu"]

    def bpd(*extra: str) -> tuple[float, str, str]:
        out = tmp_path / "e.json"
        assert main([*argv, "--temperature", "0", "--json", str(out), "--force", *extra]) == 0
        row = json.loads(out.read_text())["SetA"]
        return row["bpd"], row["bpd_protocol"], capsys.readouterr().out

    crops, protocol, text = bpd("--crops", "6", "--crop-size", "16")
    assert protocol == "crops" and "mean over 6 random 16x16 crops (seed 0)" in text and 0 < crops < 16
    assert bpd("--crops", "6", "--crop-size", "16")[0] == crops  # seeded: the same crops every run
    assert bpd("--crops", "6", "--crop-size", "16", "--seed", "1")[0] != crops
    whole, protocol, text = bpd("--protocol", "whole", "--crop-size", "16")
    assert protocol == "whole" and "bits/dim: whole images" in text and whole != crops
    _error(capsys, [*argv, "--crops", "0"], "--crops")
    _error(capsys, [*argv, "--crop-size", "18"], "multiple of 4")


def test_eval_padding_flag(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--padding``: the paper's zeros to a square by default, edge replication as the option."""
    from cnf_teach.super_resolution import evaluation

    seen: list[str] = []
    real = evaluation.make_upsample_fn

    def spy(model, temperature=0.0, padding="square"):  # noqa: ANN001, ANN202 - wraps the real function
        seen.append(padding)
        return real(model, temperature, padding)

    monkeypatch.setattr(evaluation, "make_upsample_fn", spy)
    folder = tmp_path / "wide"
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(folder / "wide.png")
    argv = ["sr", "eval", "--checkpoint", str(trained["ckpt"]), "--data", str(folder), "--device", "cpu"]
    for extra, padding in (([], "square"), (["--padding", "replicate"], "replicate")):
        out = tmp_path / f"{padding}.json"
        assert main([*argv, "--temperature", "0", "--json", str(out), "--force", *extra]) == 0
        assert f"padding for PSNR/SSIM: {padding}" in capsys.readouterr().out
        assert seen[-1] == padding
        assert json.loads(out.read_text())["wide"]["images"] == 1  # a 12x20 LR image, scored on its exact shape


def test_train_validates_on_the_imagenet_holdout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """On downsampled ImageNet, validation uses held-out training images, not ImageNet's validation file."""
    from cnf_teach.data.imagenet import save_imagenet_batch

    rng = np.random.default_rng(0)
    data = tmp_path / "imagenet16"
    data.mkdir()
    save_imagenet_batch(data / "train_data_batch_1.npz", rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8))
    save_imagenet_batch(data / "val_data.npz", rng.integers(0, 256, (5, 3, 16, 16), dtype=np.uint8))
    metrics = tmp_path / "m.json"
    args = ["sr", "train", "--config", "tiny", "--data", str(data), "--steps", "2", "--batch-size", "2"]
    args += ["--eval-every", "2", "--out", str(tmp_path / "run"), "--device", "cpu", "--json", str(metrics)]
    with caplog.at_level("INFO", logger="cnf_teach.commands"):
        assert main(args) == 0
    assert f"validating on 4 held-out training images of {data}" in caplog.text  # a tenth of a small copy
    assert 0 < json.loads(metrics.read_text())["eval_bpd"] < 16


def test_prepare_writes_copies_that_training_memory_maps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from cnf_teach.data.imagenet import save_imagenet_batch

    data = tmp_path / "imagenet16"
    data.mkdir()
    rng = np.random.default_rng(0)
    save_imagenet_batch(data / "train_data_batch_1.npz", rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8))
    assert main(["sr", "prepare", "--data", str(data)]) == 0
    assert "1 files ready in" in capsys.readouterr().out
    args = ["sr", "train", "--config", "tiny", "--data", str(data), "--steps", "1", "--batch-size", "2"]
    args += ["--eval-every", "1", "--out", str(tmp_path / "run"), "--device", "cpu"]
    with caplog.at_level("INFO", logger="cnf_teach.data.imagenet"):
        assert main(args) == 0
    # The training set and the hold-out it validates on both read the copy.
    assert caplog.text.count("memory-mapping 1 of 1 files from their cached copies") == 2
    assert main(["sr", "prepare", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1


def test_bicubic_row_without_checkpoint_on_several_sets(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _write_images(tmp_path / "SetB", 1, 24, seed=2)
    out = tmp_path / "bicubic.json"
    argv = ["sr", "eval", "--model", "bicubic", "--data", str(trained["test"]), "--data", str(other)]
    assert main([*argv, "--scale", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert list(figures) == ["SetA", "SetB"]
    assert figures["SetA"]["bpd"] is None and figures["SetB"]["images"] == 1
    assert figures["SetA"]["psnr_y"] > 20  # smooth images: bicubic is good
    assert "method: bicubic" in capsys.readouterr().out


def test_sample_writes_a_2x_image(trained: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sr.png"
    image = trained["test"] / "img0.png"
    argv = ["sr", "sample", "--checkpoint", str(trained["ckpt"]), "--image", str(image), "--temperature", "0.8"]
    assert main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    with Image.open(out) as im:
        assert im.size == (72, 72) and im.mode == "RGB"


def test_bad_input_is_one_line_exit_2(
    trained: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = str(trained["ckpt"])
    # Missing and empty folders.
    _error(capsys, ["sr", "eval", "--model", "bicubic", "--data", str(tmp_path / "nope")], "does not exist")
    (tmp_path / "empty").mkdir()
    _error(capsys, ["sr", "eval", "--checkpoint", ckpt, "--data", str(tmp_path / "empty")], "holds no image")
    # A corrupt image.
    bad = _write_images(tmp_path / "bad", 1, 16)
    (bad / "broken.png").write_bytes(b"\x89PNG not really")
    _error(capsys, ["sr", "eval", "--model", "bicubic", "--data", str(bad)], "broken.png")
    # Images smaller than the training crop.
    small = _write_images(tmp_path / "small", 2, 20)
    argv = ["sr", "train", "--data", str(small), "--patch", "32", "--steps", "1", "--out", str(tmp_path / "r")]
    _error(capsys, argv, "smaller than the patch size 32")
    # Unsupported scales.
    _error(capsys, ["sr", "eval", "--model", "bicubic", "--data", str(small), "--scale", "5"], "unsupported scale 5")
    _error(capsys, ["sr", "eval", "--checkpoint", ckpt, "--data", str(small), "--scale", "4"], "unsupported scale 4")
    # A checkpoint of the other task, a missing one, and one that is not a checkpoint.
    seg = tmp_path / "seg.pt"
    save_checkpoint({"task": "seg", "model": {}}, seg)
    _error(capsys, ["sr", "eval", "--checkpoint", str(seg), "--data", str(small)], "'seg' checkpoint")
    out = str(tmp_path / "o.png")
    _error(capsys, ["sr", "sample", "--checkpoint", str(seg), "--image", str(small / "img0.png"), "--out", out], "seg")
    _error(capsys, ["sr", "eval", "--checkpoint", str(tmp_path / "none.pt")], "not found")
    _error(capsys, ["sr", "eval", "--checkpoint", str(bad / "broken.png")], "not a readable checkpoint")
    # Other mistakes.
    _error(capsys, ["sr", "train", "--config", "huge"], "unknown SR config 'huge'")
    _error(capsys, ["sr", "eval"], "pass --checkpoint")
    argv = ["sr", "sample", "--checkpoint", ckpt, "--image", str(tmp_path / "x.png"), "--out", out]
    _error(capsys, argv, "not found")


def _script(name: str):  # noqa: ANN202 - a module loaded from benchmarks/
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sr_reproduction_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "repro.json"
    argv = ["--smoke", "--threads", "1", "--out", str(tmp_path / "runs"), "--json", str(out)]
    assert _script("sr_reproduction").main([*argv, "--figure", str(tmp_path / "fig.png")]) == 0
    text = capsys.readouterr().out
    assert "bicubic" in text and "baseline (mode)" in text and "CNF tau=0.8" in text
    result = json.loads(out.read_text())
    (name,) = result["table"]["bicubic"]
    assert result["table"]["CNF tau=0"][name]["bpd"] > 0 and result["table"]["bicubic"][name]["bpd"] is None
    assert result["training"]["cnf"]["steps"] >= 1 and result["training"]["baseline"]["steps"] >= 1
    assert (tmp_path / "fig.png").stat().st_size > 1000


def test_gpu_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gpu.json"
    assert _script("gpu_sr").main(["--smoke", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["mode"] for r in rows] == ["fp32", "tf32", "bf16"]
    assert all(r["step_s"] > 0 and math.isfinite(r["last_bpd"]) for r in rows)
    assert "200k iters (h)" in capsys.readouterr().out


def test_sr_comparison_figure_has_one_panel_per_method() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from cnf_teach.super_resolution import SRConfig, SuperResolutionBaseline, SuperResolutionCNF
    from cnf_teach.super_resolution.figures import FIG3_TEMPERATURES, sr_comparison_figure, sr_panels

    config = SRConfig.tiny()
    lr = torch.randint(0, 256, (3, 10, 10), dtype=torch.uint8)  # padded to 12x12 for the flow, cropped back
    hr = torch.randint(0, 256, (3, 20, 20), dtype=torch.uint8)
    panels = sr_panels(lr, hr, SuperResolutionCNF(config), SuperResolutionBaseline(config))
    titles = [t for t, _ in panels]
    assert titles[:2] == ["LR", "bicubic"] and titles[-3:] == ["baseline sample", "baseline mode (ours)", "HR"]
    assert len(titles) == 5 + len(FIG3_TEMPERATURES) == 8
    assert all(img.shape == (20, 20, 3) for _, img in panels[1:])
    fig = sr_comparison_figure([panels, panels])
    assert len(fig.axes) == 16
