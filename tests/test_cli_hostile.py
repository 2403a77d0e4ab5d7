"""The CLI's promises under hostile input: one line and exit code 2, and nothing lost.

A table of commands a careless or hostile user might type (outputs over existing files, paths
that cannot be written, ``--pretrained`` paths, numbers out of range or not finite, crafted and
damaged checkpoints, special files, broken data folders) runs through :func:`cnf_teach.cli.main`.
For every case the test asserts exit code 2, exactly one line on stderr starting
``cnf-teach: error:`` and no traceback, and that every file that existed before the command
(the "precious" files, the inputs and the checkpoints) is byte-identical afterwards and that no
file appeared beside them. Everything is written under a temporary folder.

Then two runs at once: a real ``seg train`` in another process holds its run folder; a second
run on the same folder stops with one line, and after the first is killed with ``kill -9`` the
folder is free again and its checkpoint still loads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnf_teach.cli import main
from cnf_teach.commands.common import RunLock
from cnf_teach.engine.checkpoint import load_checkpoint, save_checkpoint
from cnf_teach.errors import UsageError

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes through read-only modes


def _images(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def _edit(src: Path, dst: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    ckpt = load_checkpoint(src)
    change(ckpt)
    torch.save(ckpt, dst)  # as a crafted file would be: not through save_checkpoint's checks
    return dst


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny trained models, data, crafted files and the precious files every case must leave alone."""
    root = tmp_path_factory.mktemp("hostile")
    w: dict[str, Path] = {"root": root}
    w["images"] = _images(root / "images", 3, 32)
    w["lr"] = _images(root / "lr", 1, 12, seed=2) / "img0.png"
    sr_args = ["sr", "train", "--config", "tiny", "--data", str(w["images"]), "--steps", "1", "--batch-size", "2"]
    assert main([*sr_args, "--patch", "16", "--out", str(root / "sr_run"), "--device", "cpu"]) == 0
    w["sr"] = root / "sr_run" / "last.pt"
    w["drive"] = root / "drive"
    assert main(["seg", "synth", "--out", str(w["drive"]), "--train", "2", "--test", "1", "--size", "32"]) == 0
    seg_args = ["seg", "train", "--data", str(w["drive"]), "--out", str(root / "seg_run"), "--steps", "1"]
    assert main([*seg_args, "--batch-size", "2", "--device", "cpu", "--no-progress"]) == 0
    w["seg"] = root / "seg_run" / "last.pt"

    def nan_weights(c: dict[str, Any]) -> None:
        name = next(k for k, v in c["model"].items() if v.is_floating_point() and v.numel())
        c["model"][name] = torch.full_like(c["model"][name], float("nan"))

    def nan_optimizer(c: dict[str, Any]) -> None:
        state = next(iter(c["optimizer"]["state"].values()))
        state["exp_avg"] = torch.full_like(state["exp_avg"], float("nan"))

    def zero_rng(c: dict[str, Any]) -> None:
        c["rng"]["torch"] = torch.zeros_like(c["rng"]["torch"])

    def endless(c: dict[str, Any]) -> None:
        c["extra"]["sr_config"]["rrdb_blocks"] = 10**9

    def tensor_config(c: dict[str, Any]) -> None:
        c["extra"]["sr_config"]["steps"] = torch.tensor(2)

    crafted = root / "crafted"
    crafted.mkdir()
    w["sr_nan"] = _edit(w["sr"], crafted / "sr_nan.pt", nan_weights)
    w["seg_nan"] = _edit(w["seg"], crafted / "seg_nan.pt", nan_weights)
    w["sr_nan_opt"] = _edit(w["sr"], crafted / "sr_nan_opt.pt", nan_optimizer)
    w["sr_zero_rng"] = _edit(w["sr"], crafted / "sr_zero_rng.pt", zero_rng)
    w["sr_endless"] = _edit(w["sr"], crafted / "sr_endless.pt", endless)
    w["sr_tensor_cfg"] = _edit(w["sr"], crafted / "sr_tensor_cfg.pt", tensor_config)
    w["fifo"] = crafted / "fifo.pt"
    if hasattr(os, "mkfifo"):
        os.mkfifo(w["fifo"])
    # A shipped-looking model outside the package, for --pretrained paths.
    (crafted / "mine.json").write_text('{"task": "sr", "kind": "cnf"}')
    save_checkpoint(load_checkpoint(w["sr"]), crafted / "mine.pt")

    # Broken data folders.
    w["corrupt_images"] = _images(root / "corrupt_images", 2, 32)
    (w["corrupt_images"] / "img1.png").write_bytes(b"\x89PNG not really")
    w["corrupt_npz"] = root / "imagenet"
    w["corrupt_npz"].mkdir()
    (w["corrupt_npz"] / "val_data.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    w["no_vessels"] = root / "no_vessels"
    assert main(["seg", "synth", "--out", str(w["no_vessels"]), "--train", "2", "--test", "1", "--size", "32"]) == 0
    for label in (w["no_vessels"] / "test" / "1st_manual").iterdir():
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(label, format="GIF")

    # The precious files: what a careless command would overwrite.
    precious = root / "precious"
    precious.mkdir()
    (precious / "results.json").write_text('{"kept": true}')
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(precious / "picture.png")
    (precious / "figs").mkdir()
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(precious / "figs" / "pr_curves.png")
    (precious / "a_file").write_text("not a folder")
    (precious / "DRIVE" / "training" / "images").mkdir(parents=True)
    (precious / "DRIVE" / "training" / "images" / "21_training.tif").write_bytes(b"a real DRIVE photograph")
    (precious / "old_run").mkdir()
    (precious / "old_run" / "last.pt").write_bytes(w["sr"].read_bytes())
    (precious / "new.pt").write_bytes(b"a training checkpoint with its optimizer state")
    w["precious"] = precious
    readonly = root / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    w["readonly"] = readonly
    return w


def _case(*argv: str) -> Callable[[dict[str, Path]], list[str]]:
    """A command line whose ``{name}`` fields are paths of the world (``{precious}/x.json``)."""
    return lambda w: [a.format(**{k: str(v) for k, v in w.items()}) for a in argv]


SR_SAMPLE = ("sr", "sample", "--image", "{lr}", "--device", "cpu")
SEG_SAMPLE = ("seg", "sample", "--retina", "--size", "32", "--samples", "1", "--device", "cpu")
SEG_EVAL = ("seg", "eval", "--checkpoint", "{seg}", "--data", "{drive}", "--samples", "1", "--device", "cpu")
SR_TRAIN = ("sr", "train", "--config", "tiny", "--data", "{images}", "--steps", "1", "--batch-size", "2")
SR_TRAIN += ("--patch", "16", "--device", "cpu")
SEG_TRAIN = ("seg", "train", "--data", "{drive}", "--steps", "1", "--batch-size", "2", "--device", "cpu")
SR_EVAL = ("sr", "eval", "--checkpoint", "{sr}", "--data", "{images}", "--device", "cpu", "--max-images", "1")

#: (name, command line, a word the one-line message must hold)
CASES: list[tuple[str, Callable[[dict[str, Path]], list[str]], str]] = [
    # --- nothing overwritten or deleted without being told ---
    ("sr train into an existing run", _case(*SR_TRAIN, "--out", "{precious}/old_run"), "--resume"),
    ("sr train --resume A --out B", _case(*SR_TRAIN, "--resume", "{sr}", "--out", "{precious}/old_run"), "exists"),
    ("sr train --out ''", _case(*SR_TRAIN, "--out", ""), "--out"),
    ("sr train --out an existing file", _case(*SR_TRAIN, "--out", "{precious}/a_file"), "file"),
    ("seg train --out an existing file", _case(*SEG_TRAIN, "--out", "{precious}/a_file"), "file"),
    ("seg synth over a DRIVE copy", _case("seg", "synth", "--out", "{precious}/DRIVE", "--size", "16"), "--force"),
    ("seg synth --out a file", _case("seg", "synth", "--out", "{precious}/a_file", "--size", "16"), "a_file"),
    ("convert-checkpoint over NEW", _case("convert-checkpoint", "{sr}", "{precious}/new.pt"), "--force"),
    ("sr eval --json over a file", _case(*SR_EVAL, "--json", "{precious}/results.json"), "--force"),
    (
        "sr sample --out over a picture",
        _case(*SR_SAMPLE, "--checkpoint", "{sr}", "--out", "{precious}/picture.png"),
        "--force",
    ),
    ("seg eval --json over a file", _case(*SEG_EVAL, "--json", "{precious}/results.json"), "--force"),
    ("seg eval --figures over a figure", _case(*SEG_EVAL, "--figures", "{precious}/figs"), "pr_curves.png"),
    (
        "seg sample --out over a picture",
        _case(*SEG_SAMPLE, "--checkpoint", "{seg}", "--out", "{precious}/picture.png"),
        "--force",
    ),
    (
        "seg info --json over a file",
        _case("seg", "info", "--data", "{drive}", "--json", "{precious}/results.json"),
        "--force",
    ),
    ("toy --json over a file", _case("toy", "--steps", "1", "--json", "{precious}/results.json"), "--force"),
    # --- outputs checked before the work ---
    ("--json is a folder", _case(*SR_EVAL, "--json", "{precious}/figs"), "folder"),
    ("--json under a file", _case(*SR_EVAL, "--json", "{precious}/a_file/x.json"), "a_file"),
    ("--json empty", _case("toy", "--steps", "1", "--json", ""), "empty"),
    ("--figures is a file", _case(*SEG_EVAL, "--figures", "{precious}/a_file"), "a_file"),
    ("sr sample --out of an unknown type", _case(*SR_SAMPLE, "--checkpoint", "{sr}", "--out", "{root}/x.xyz"), ".xyz"),
    ("seg sample --out is a folder", _case(*SEG_SAMPLE, "--checkpoint", "{seg}", "--out", "{precious}/figs"), "folder"),
    # --- --pretrained takes shipped names only ---
    ("sr --pretrained ''", _case(*SR_SAMPLE, "--pretrained", "", "--out", "{root}/p.png"), "pretrained"),
    (
        "sr --pretrained a path",
        _case(*SR_SAMPLE, "--pretrained", "{root}/crafted/mine", "--out", "{root}/p.png"),
        "not a path",
    ),
    (
        "sr --pretrained ../..",
        _case(*SR_SAMPLE, "--pretrained", "../../crafted/mine", "--out", "{root}/p.png"),
        "not a path",
    ),
    ("seg --pretrained ''", _case(*SEG_SAMPLE, "--pretrained", "", "--out", "{root}/p.png"), "pretrained"),
    (
        "seg --pretrained a path",
        _case(*SEG_SAMPLE, "--pretrained", "/etc/passwd", "--out", "{root}/p.png"),
        "not a path",
    ),
    # --- numbers ---
    ("seg train --lr nan", _case(*SEG_TRAIN, "--out", "{root}/r1", "--lr", "nan"), "--lr"),
    ("seg train --lr inf", _case(*SEG_TRAIN, "--out", "{root}/r1", "--lr", "inf"), "--lr"),
    ("sr train --lr nan", _case(*SR_TRAIN, "--out", "{root}/r2", "--lr", "nan"), "--lr"),
    ("--seed 1e23", _case("toy", "--seed", "1e23"), "--seed"),
    ("--seed -1", _case("toy", "--seed", "-1"), "--seed"),
    (
        "--seed 2**64",
        _case(*SR_SAMPLE, "--checkpoint", "{sr}", "--out", "{root}/s.png", "--seed", str(2**64)),
        "--seed",
    ),
    ("--downscale inf", _case(*SEG_EVAL, "--downscale", "inf"), "--downscale"),
    ("--downscale nan", _case(*SEG_TRAIN, "--out", "{root}/r1", "--downscale", "nan"), "--downscale"),
    (
        "--checkpoint-every -1",
        _case(*SEG_TRAIN, "--out", "{root}/r1", "--checkpoint-every", "-1"),
        "--checkpoint-every",
    ),
    ("--eval-every -5", _case(*SR_TRAIN, "--out", "{root}/r2", "--eval-every", "-5"), "--eval-every"),
    ("--samples 1e8", _case(*SEG_EVAL, "--samples", "1e8"), "--samples"),
    ("--samples 100000000", _case(*SEG_EVAL, "--samples", "100000000"), "--samples"),
    ("--size 100000", _case("seg", "synth", "--out", "{root}/s1", "--size", "100000"), "--size"),
    ("--pad-to 8 under the image", _case(*SEG_TRAIN, "--out", "{root}/r1", "--pad-to", "8"), "pad"),
    ("--crops 0", _case(*SR_EVAL, "--crops", "0"), "--crops"),
    (
        "--temperature nan",
        _case(*SR_SAMPLE, "--checkpoint", "{sr}", "--out", "{root}/s.png", "--temperature", "nan"),
        "--temperature",
    ),
    ("--workers -1", _case(*SEG_TRAIN, "--out", "{root}/r1", "--workers", "-1"), "--workers"),
    ("--steps 0", _case(*SR_TRAIN, "--out", "{root}/r2", "--steps", "0"), "--steps"),
    ("--device bogus", _case(*SR_SAMPLE, "--checkpoint", "{sr}", "--out", "{root}/s.png", "--device", "tpu"), "device"),
    # --- checkpoint contents ---
    ("NaN weights (sr)", _case(*SR_SAMPLE, "--checkpoint", "{sr_nan}", "--out", "{root}/s.png"), "NaN"),
    ("NaN weights (seg)", _case(*SEG_SAMPLE, "--checkpoint", "{seg_nan}", "--out", "{root}/s.png"), "NaN"),
    ("NaN optimizer state", _case(*SR_TRAIN, "--resume", "{sr_nan_opt}", "--out", "{root}/r3"), "NaN"),
    ("zeroed RNG state", _case(*SR_TRAIN, "--resume", "{sr_zero_rng}", "--out", "{root}/r4"), "rng"),
    (
        "a billion RRDB blocks",
        _case(*SR_SAMPLE, "--checkpoint", "{sr_endless}", "--out", "{root}/s.png"),
        "rrdb_blocks",
    ),
    (
        "a tensor inside the config",
        _case(*SR_SAMPLE, "--checkpoint", "{sr_tensor_cfg}", "--out", "{root}/s.png"),
        "plain",
    ),
    ("a folder as --checkpoint", _case(*SR_SAMPLE, "--checkpoint", "{precious}", "--out", "{root}/s.png"), "folder"),
    ("--downscale to 1 pixel", _case(*SEG_TRAIN, "--out", "{root}/r1", "--downscale", "30"), "smaller --downscale"),
    ("--crop 100000", _case(*SEG_TRAIN, "--out", "{root}/r1", "--crop", "100000"), "--crop"),
    ("seg checkpoint to sr", _case(*SR_SAMPLE, "--checkpoint", "{seg}", "--out", "{root}/s.png"), "seg"),
    # --- data folders ---
    ("a corrupt image", _case(*SR_EVAL, "--data", "{corrupt_images}"), "img1.png"),
    ("a corrupt .npz", _case(*SR_EVAL, "--data", "{corrupt_npz}"), "val_data.npz"),
    ("labels with no vessel", _case("seg", "eval", "--checkpoint", "{seg}", "--data", "{no_vessels}"), "no positive"),
    ("seg info on a file", _case("seg", "info", "--data", "{precious}/a_file"), "a_file"),
]

if hasattr(os, "mkfifo"):  # special files: reading one would wait forever
    CASES += [
        (
            "a FIFO as --checkpoint",
            _case(*SR_SAMPLE, "--checkpoint", "{fifo}", "--out", "{root}/s.png"),
            "regular file",
        ),
        (
            "a FIFO as OLD",
            _case("convert-checkpoint", "{fifo}", "{root}/converted.pt", "--trust-pickle"),
            "regular file",
        ),
    ]
if not AS_ROOT:  # permissions do not stop root
    CASES += [
        ("--json in a read-only folder", _case(*SR_EVAL, "--json", "{readonly}/x.json"), "not writable"),
        ("--out in a read-only folder", _case(*SEG_TRAIN, "--out", "{readonly}/run"), "not writable"),
    ]


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (``None``) under ``root``, FIFOs excepted (reading one would wait)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        if p.is_fifo():
            out[str(p)] = b"fifo"
        elif p.is_dir():
            out[str(p)] = None
        else:
            out[str(p)] = p.read_bytes()
    return out


def _lock_only(path: Path) -> bool:
    """A run folder's lock, or a folder holding nothing else."""
    return path.name == ".lock" or (path.is_dir() and all(c.name == ".lock" for c in path.iterdir()))


@pytest.mark.parametrize("name,argv,word", CASES, ids=[c[0] for c in CASES])
def test_hostile_case_is_one_line_and_loses_nothing(
    world: dict[str, Path],
    name: str,
    argv: Callable[[dict[str, Path]], list[str]],
    word: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = _snapshot(world["root"])
    capsys.readouterr()
    code = main(argv(world))
    err = capsys.readouterr().err
    assert code == 2, (name, code, err)
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1, (name, err)
    assert "Traceback" not in err
    assert word.lower() in err.lower(), (name, err)
    after = _snapshot(world["root"])
    changed = sorted(k for k in before if after.get(k, b"gone") != before[k])
    assert not changed, f"{name}: changed or removed {changed}"
    new = sorted(p for p in set(after) - set(before) if not _lock_only(Path(p)))
    assert not new, f"{name}: wrote {new}"  # a refused run may leave its (empty) run folder and lock, nothing else


def test_a_decompression_bomb_is_one_line(world: dict[str, Path], monkeypatch, capsys) -> None:
    """An image over PIL's size limit (lowered here, so that a small image is one) is a one-line error."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert main(["seg", "info", "--data", str(world["drive"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1 and "Traceback" not in err, err


def test_verbose_shows_the_traceback(world: dict[str, Path], capsys) -> None:
    argv = ["-v", "sr", "sample", "--checkpoint", str(world["sr_nan"]), "--image", str(world["lr"])]
    assert main([*argv, "--out", str(world["root"] / "v.png")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("cnf-teach: error:")


def test_force_replaces_and_synth_is_atomic(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    """``--force`` replaces a file once the new one is written; ``seg synth`` builds beside and renames."""
    target = tmp_path / "results.json"
    target.write_text("old")
    assert main(["toy", "--steps", "1", "--json", str(target), "--force"]) == 0
    assert "model_nll" in target.read_text()
    nested = tmp_path / "missing" / "folder" / "x.json"  # a missing folder is created before the work
    assert main(["toy", "--steps", "1", "--json", str(nested)]) == 0 and nested.is_file()
    out = tmp_path / "synth"
    assert main(["seg", "synth", "--out", str(out), "--train", "1", "--test", "0", "--size", "16"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["missing", "results.json", "synth"]  # no temporary left
    assert main(["seg", "synth", "--out", str(out), "--train", "1", "--test", "0", "--size", "16", "--force"]) == 0


def test_a_second_run_on_a_locked_folder_stops(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    """In-process: while a run holds the folder, another run on it is one line and touches nothing."""
    run = tmp_path / "run"
    with RunLock(run):
        before = _snapshot(tmp_path)
        assert main([*_case(*SEG_TRAIN)(world), "--out", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "another run is writing" in err and err.count("\n") == 1
        assert _snapshot(tmp_path) == before
    with pytest.raises(UsageError):  # the lock is the operating system's: a second holder is refused
        with RunLock(run), RunLock(run):
            pass


@pytest.mark.slow  # a second Python process that trains until its first checkpoint (about 10-25 s)
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_two_runs_at_once(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    """A real run in another process holds its folder; the second stops; kill -9 frees the folder."""
    run = tmp_path / "run"
    argv = [*_case(*SEG_TRAIN)(world), "--out", str(run), "--no-progress", "--checkpoint-every", "1"]
    argv[argv.index("--steps") + 1] = "100000"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "cnf_teach", *argv], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.pt").is_file():  # the first run is training and has saved
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.monotonic() < deadline, "the first run never saved a checkpoint"
            time.sleep(0.2)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "another run is writing" in err and err.count("\n") == 1, err
        assert main([*argv, "--resume"]) == 2  # resuming it while it runs is refused too
        capsys.readouterr()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    assert load_checkpoint(run / "last.pt")["step"] >= 1  # what the killed run saved is whole
    RunLock(run).acquire().release()  # and its lock died with it
