"""Checkpoints cannot run code, and every malformed one is a one-line error (Python API and CLI).

A checkpoint is read with PyTorch's ``weights_only`` unpickler, which builds tensors and plain
containers only; a file that needs anything else (a crafted payload, or an older pickled
checkpoint) is refused before a single object of it is built. These tests feed the loader and
every command that reads a checkpoint with a payload that would create a file when unpickled,
with the usual kinds of broken file, and with seeded random truncations and mutations of real
(tiny) checkpoints, and check that the answer is always one line: ``ValueError`` from Python,
``cnf-teach: error: ...`` with exit code 2 from the CLI, and never a traceback.
"""

from __future__ import annotations

import io
import pickle
import random
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from cnf_teach.cli import main
from cnf_teach.engine import TrainConfig, Trainer, TrainingDiverged, make_loader
from cnf_teach.engine.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    convert_legacy_checkpoint,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    save_weights,
)
from cnf_teach.flows import MultiScaleFlow
from cnf_teach.super_resolution.checkpoint import model_from_checkpoint, sr_checkpoint_state
from cnf_teach.super_resolution.config import SRConfig
from cnf_teach.super_resolution.model import build_sr_model, sr_loss
from cnf_teach.vessels.checkpoint import model_from_checkpoint as seg_model_from_checkpoint
from cnf_teach.vessels.config import SegConfig
from cnf_teach.vessels.model import build_seg_model, seg_loss


# --- fixtures --------------------------------------------------------------------------------
class _CreatesFile:
    """Unpickling this object opens (and so creates) ``path``: a stand-in for any shell command."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str, str]]:
        return (open, (self.path, "w"))


def _sr_config() -> SRConfig:
    return SRConfig.from_dict({**SRConfig.tiny().to_dict(), "hidden": 8, "steps": 2, "rrdb_blocks": 1})


def _untrained_checkpoint(model: nn.Module, loss: Any, task: str, extra: dict[str, Any], out: Path) -> Path:
    """A real engine checkpoint of ``model`` at step 0 (no data needed)."""
    cfg = TrainConfig(steps=0, out_dir=str(out), progress=False, device="cpu")
    Trainer(model, loss, [], cfg, task=task, extra_state=extra).fit()
    return out / "last.pt"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt_safety")
    torch.manual_seed(0)
    sr_cfg = _sr_config()
    sr = _untrained_checkpoint(
        build_sr_model(sr_cfg, "cnf"), sr_loss, "sr", sr_checkpoint_state(sr_cfg, "cnf"), root / "sr"
    )
    seg_cfg = SegConfig.tiny()
    seg_extra = {"model": "cnf_binary", "seg_config": seg_cfg.to_dict(), "data": "synthetic"}
    seg = _untrained_checkpoint(build_seg_model("cnf_binary", seg_cfg), seg_loss, "seg", seg_extra, root / "seg")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        pixels = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"img{i}.png")
    return {"root": root, "sr": sr, "seg": seg, "images": images, "image": images / "img0.png"}


def _commands(ckpt: Path, files: dict[str, Path], tmp: Path) -> dict[str, list[str]]:
    """Every CLI command that reads a checkpoint, pointed at ``ckpt``."""
    seg_run = tmp / "seg_run"
    seg_run.mkdir(exist_ok=True)
    (seg_run / "last.pt").write_bytes(ckpt.read_bytes())  # `seg train --resume` reads OUT/last.pt
    sr_train = ["sr", "train", "--config", "tiny", "--data", str(files["images"]), "--patch", "16", "--steps", "1"]
    sr_train += ["--batch-size", "2", "--device", "cpu", "--out", str(tmp / "sr_run"), "--resume", str(ckpt)]
    return {
        "sr eval": ["sr", "eval", "--checkpoint", str(ckpt), "--data", str(files["images"]), "--device", "cpu"],
        "sr sample": ["sr", "sample", "--checkpoint", str(ckpt), "--image", str(files["image"])]
        + ["--out", str(tmp / "sr.png"), "--device", "cpu"],
        "sr train --resume": sr_train,
        "seg eval": ["seg", "eval", "--checkpoint", str(ckpt), "--data", str(tmp / "no_drive"), "--device", "cpu"],
        "seg sample": ["seg", "sample", "--checkpoint", str(ckpt), "--retina", "--size", "16", "--samples", "1"]
        + ["--out", str(tmp / "seg.png"), "--device", "cpu"],
        "seg train --resume": ["seg", "train", "--out", str(seg_run), "--resume", "--steps", "1", "--device", "cpu"],
    }


def _assert_one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert err.startswith("cnf-teach: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _assert_one_line_value_error(fn: Callable[[], Any], *needles: str) -> str:
    with pytest.raises(ValueError) as info:
        fn()
    msg = str(info.value)
    assert msg and "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# --- payloads that would run code -------------------------------------------------------------
def _payloads(root: Path, marker: Path) -> dict[str, Path]:
    """Files whose unpickling would create ``marker``: in the checkpoint, deep inside it, bare."""
    out = {}
    out["model entry"] = root / "model_entry.pt"
    torch.save(
        {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "task": "seg", "model": _CreatesFile(marker)},
        out["model entry"],
    )
    nested = _seg_content()
    nested["extra"]["seg_config"]["hidden"] = _CreatesFile(marker)
    out["deep in extra"] = root / "deep.pt"
    torch.save(nested, out["deep in extra"])
    out["bare pickle"] = root / "bare.pt"
    out["bare pickle"].write_bytes(pickle.dumps({"task": "sr", "model": _CreatesFile(marker)}, protocol=4))
    out["legacy torch file"] = root / "legacy.pt"
    torch.save(
        {"task": "sr", "model": _CreatesFile(marker)}, out["legacy torch file"], _use_new_zipfile_serialization=False
    )
    return out


def _seg_content() -> dict[str, Any]:
    """A valid seg checkpoint's content (plain data), to plant a payload in."""
    seg_cfg = SegConfig.tiny()
    return {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "task": "seg",
        "model": build_seg_model("cnf_binary", seg_cfg).state_dict(),
        "extra": {"model": "cnf_binary", "seg_config": seg_cfg.to_dict()},
    }


def test_the_payload_is_real(tmp_path: Path) -> None:
    """Control: an unrestricted load of the payload does create the file (so the tests below mean something)."""
    marker = tmp_path / "control"
    path = tmp_path / "p.pt"
    torch.save({"model": _CreatesFile(marker)}, path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_payload_never_runs_through_the_api(files: dict[str, Path], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for name, path in _payloads(tmp_path, marker).items():
        msg = _assert_one_line_value_error(lambda path=path: load_checkpoint(path))
        assert not marker.exists(), name
        assert "convert-checkpoint" in msg and "--trust-pickle" in msg, (name, msg)
        _assert_one_line_value_error(lambda path=path: _load_seg(path))
        _assert_one_line_value_error(partial(Trainer.resume, path, _flow(), _loss, [], task="seg"), "--trust-pickle")
        assert not marker.exists(), name


def test_payload_never_runs_through_the_cli(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    payloads = _payloads(tmp_path, marker)
    for name, argv in _commands(payloads["model entry"], files, tmp_path).items():
        _assert_one_line_error(capsys, argv, "--trust-pickle")
        assert not marker.exists(), name
    for name, path in payloads.items():
        _assert_one_line_error(capsys, ["sr", "eval", "--checkpoint", str(path), "--device", "cpu"])
        assert not marker.exists(), name
    # Converting needs the explicit flag: without it the file is not even unpickled.
    _assert_one_line_error(
        capsys, ["convert-checkpoint", str(payloads["model entry"]), str(tmp_path / "new.pt")], "--trust-pickle"
    )
    assert not marker.exists() and not (tmp_path / "new.pt").exists()


# --- the old pickled format: refused, converted on request -----------------------------------
def _old_format(path: Path, new: Path) -> tuple[Path, dict[str, Any]]:
    """``new`` rewritten as the previous release did: NumPy and Python random states pickled as objects."""
    ckpt = load_checkpoint(new)
    old_rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}  # noqa: NPY002
    old = {k: v for k, v in ckpt.items() if k not in ("format", "version")}
    old["rng"] = old_rng
    old["data"] = {"epoch": 0, "batches": 0, "epoch_rng": old_rng}
    torch.save(old, path)
    return path, old_rng


def test_old_format_is_refused_then_converted(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, old_rng = _old_format(tmp_path / "old.pt", files["sr"])
    msg = _assert_one_line_value_error(lambda: load_checkpoint(old), "convert-checkpoint", "--trust-pickle")
    assert "older" in msg
    argv = ["sr", "sample", "--checkpoint", str(old), "--image", str(files["image"]), "--out", str(tmp_path / "x.png")]
    _assert_one_line_error(capsys, argv, "convert-checkpoint")
    # Without the flag: refused, naming the risk.
    _assert_one_line_error(capsys, ["convert-checkpoint", str(old), str(tmp_path / "new.pt")], "--trust-pickle", "code")
    assert not (tmp_path / "new.pt").exists()
    assert main(["convert-checkpoint", str(old), str(tmp_path / "new.pt"), "--trust-pickle"]) == 0
    capsys.readouterr()
    ckpt = load_checkpoint(tmp_path / "new.pt")
    assert ckpt["format"] == CHECKPOINT_FORMAT and ckpt["task"] == "sr"
    assert np.array_equal(ckpt["rng"]["numpy"]["key"].numpy(), old_rng["numpy"][1])
    assert ckpt["rng"]["python"]["state"].tolist() == list(old_rng["python"][1])
    model_from_checkpoint(ckpt)  # the converted file rebuilds the model
    # The Python API: the flag is a keyword that must be set.
    _assert_one_line_value_error(lambda: convert_legacy_checkpoint(old, tmp_path / "n2.pt"), "trust_pickle")
    convert_legacy_checkpoint(old, tmp_path / "n2.pt", trust_pickle=True)
    np.random.seed(123)  # noqa: NPY002
    Trainer.resume(tmp_path / "n2.pt", build_sr_model(_sr_config(), "cnf"), sr_loss, [], task="sr")
    assert np.array_equal(np.random.get_state()[1], old_rng["numpy"][1])  # noqa: NPY002 - restored on resume
    assert random.getstate() == old_rng["python"]


# --- the format ------------------------------------------------------------------------------
def test_the_format_is_plain_data(files: dict[str, Path]) -> None:
    """Everything but tensors is JSON-like; the file loads with PyTorch's ``weights_only`` loader alone."""
    raw = torch.load(files["sr"], weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["version"] == CHECKPOINT_VERSION

    def walk(x: Any, where: str) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                assert isinstance(k, (str, int)), where
                walk(v, f"{where}.{k}")
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
        else:
            assert x is None or isinstance(x, (str, int, float, bool, torch.Tensor)), (where, type(x))

    walk(raw, "ckpt")
    rng = raw["rng"]
    assert rng["torch"].dtype == torch.uint8 and rng["loader"].dtype == torch.uint8 if "loader" in rng else True
    assert rng["numpy"]["key"].shape == (624,) and isinstance(rng["numpy"]["pos"], int)
    assert rng["python"]["state"].shape == (625,)


def test_save_refuses_objects_that_are_not_plain_data(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    _assert_one_line_value_error(
        lambda: save_checkpoint({"task": "sr", "model": {}, "extra": {"a": np.zeros(3)}}, path), "extra", "ndarray"
    )
    _assert_one_line_value_error(lambda: save_checkpoint({"task": "sr", "model": {}, "extra": {"f": open}}, path))
    assert not path.exists() and not list(tmp_path.glob("*.tmp"))


def test_weights_only_file_for_released_models(files: dict[str, Path], tmp_path: Path) -> None:
    """A released model needs only the weights and the task's config; it is read like any checkpoint."""
    ckpt = load_checkpoint(files["sr"])
    path = save_weights(tmp_path / "sr_tiny.pt", "sr", ckpt["model"], ckpt["extra"], meta={"source": "test"})
    weights = load_checkpoint(path)
    assert set(weights) == {"format", "version", "task", "model", "extra", "meta"}
    model = model_from_checkpoint(weights)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ckpt["model"].values(), strict=True))
    # It rebuilds models but cannot resume training.
    _assert_one_line_value_error(
        lambda: Trainer.resume(path, build_sr_model(_sr_config(), "cnf"), sr_loss, [], task="sr"), "weights only"
    )


# --- malformed files -------------------------------------------------------------------------
def _write(path: Path, ckpt: dict[str, Any]) -> Path:
    torch.save(ckpt, path)  # bypasses save_checkpoint's checks, as a hand-edited file would
    return path


def _malformed(files: dict[str, Path], root: Path) -> dict[str, tuple[Path, str]]:
    """``name -> (file, a word the message must contain)`` for the usual broken SR checkpoints."""
    good = load_checkpoint(files["sr"])
    out: dict[str, tuple[Path, str]] = {}
    out["random bytes"] = (root / "random.pt", "not a")
    out["random bytes"][0].write_bytes(random.Random(0).randbytes(3000))
    out["text file"] = (root / "notes.txt", "not a")
    out["text file"][0].write_text("step: 3\nloss: 2.1\n")
    out["empty file"] = (root / "empty.pt", "empty")
    out["empty file"][0].write_bytes(b"")
    zpath = root / "archive.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("readme.txt", "hello")
    out["zip, not torch"] = (zpath, "not a")
    out["bare state dict"] = (_write(root / "bare.pt", dict(good["model"])), "format")
    for key in ("model", "task", "format"):
        out[f"no {key}"] = (_write(root / f"no_{key}.pt", {k: v for k, v in good.items() if k != key}), key)
    out["no extra"] = (_write(root / "no_extra.pt", {k: v for k, v in good.items() if k != "extra"}), "sr_config")
    name = next(iter(good["model"]))
    for label, change, word in (
        ("wrong shape", lambda t: torch.zeros(*t.shape, 2), "shape"),
        ("wrong dtype", lambda t: t.double(), "dtype"),
    ):
        bad = dict(good, model={**good["model"], name: change(good["model"][name])})
        out[label] = (_write(root / f"{label.replace(' ', '_')}.pt", bad), word)
    missing = dict(good, model={k: v for k, v in good["model"].items() if k != name})
    out["missing tensor"] = (_write(root / "missing_tensor.pt", missing), "missing")
    extra_t = dict(good, model={**good["model"], "surprise.weight": torch.zeros(2)})
    out["unexpected tensor"] = (_write(root / "unexpected.pt", extra_t), "unexpected")
    bad_cfg = dict(good, extra={**good["extra"], "sr_config": {**good["extra"]["sr_config"], "hidden": "wide"}})
    out["config that builds no model"] = (_write(root / "bad_cfg.pt", bad_cfg), "config")
    # A config asking for a far larger model than the file holds is refused before it is allocated.
    huge = dict(good, extra={**good["extra"], "sr_config": {**good["extra"]["sr_config"], "hidden": 4096}})
    out["config of a huge model"] = (_write(root / "huge.pt", huge), "does not fit")
    # A config whose construction would never end (a billion blocks) is refused before anything is built.
    endless = dict(good, extra={**good["extra"], "sr_config": {**good["extra"]["sr_config"], "rrdb_blocks": 10**9}})
    out["config of an endless model"] = (_write(root / "endless.pt", endless), "outside")
    tensor_cfg = dict(
        good, extra={**good["extra"], "sr_config": {**good["extra"]["sr_config"], "hidden": torch.ones(2)}}
    )
    out["a tensor inside the config"] = (_write(root / "tensor_cfg.pt", tensor_cfg), "not a plain value")
    bad_kind = dict(good, extra={**good["extra"], "kind": "transformer"})
    out["unknown model kind"] = (_write(root / "bad_kind.pt", bad_kind), "kind")
    out["other task"] = (files["seg"], "seg")
    out["future version"] = (_write(root / "future.pt", dict(good, version=CHECKPOINT_VERSION + 1)), "version")
    return out


def _load_sr(path: Path) -> Any:
    return model_from_checkpoint(load_checkpoint(path), str(path))


def _load_seg(path: Path) -> Any:
    return seg_model_from_checkpoint(load_checkpoint(path), str(path))


def test_malformed_checkpoints_are_one_line_value_errors(files: dict[str, Path], tmp_path: Path) -> None:
    for name, (path, word) in _malformed(files, tmp_path).items():
        msg = _assert_one_line_value_error(lambda path=path: _load_sr(path))
        assert word in msg, (name, msg)
        assert len(msg) < 600, (name, msg)


def test_malformed_checkpoints_are_one_line_cli_errors(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = _malformed(files, tmp_path)
    for name, (path, word) in cases.items():
        argv = ["sr", "sample", "--checkpoint", str(path), "--image", str(files["image"])]
        err = _assert_one_line_error(capsys, [*argv, "--out", str(tmp_path / "o.png"), "--device", "cpu"])
        assert word in err, (name, err)
    # Every command that reads a checkpoint, on a few of them (including the other task's file).
    for name in ("random bytes", "wrong shape", "no model", "zip, not torch"):
        for command, argv in _commands(cases[name][0], files, tmp_path).items():
            if name == "wrong shape" and command.startswith("seg"):
                continue  # an SR file: the seg commands already stop at its task
            _assert_one_line_error(capsys, argv)
    for command, argv in _commands(files["sr"], files, tmp_path).items():
        if command.startswith("seg"):
            _assert_one_line_error(capsys, argv, "'sr'")
    _assert_one_line_error(capsys, _commands(files["seg"], files, tmp_path)["sr eval"], "'seg'")


def test_load_model_state_names_the_mismatch() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = model.state_dict()
    _assert_one_line_value_error(
        lambda: load_model_state(model, {**state, "0.weight": torch.zeros(3, 5)}), "0.weight", "shape"
    )
    _assert_one_line_value_error(
        lambda: load_model_state(model, {**state, "1.bias": state["1.bias"].half()}), "1.bias", "dtype"
    )
    _assert_one_line_value_error(
        lambda: load_model_state(model, {k: v for k, v in state.items() if k != "0.bias"}), "0.bias"
    )
    _assert_one_line_value_error(lambda: load_model_state(model, {**state, "2.weight": torch.zeros(1)}), "2.weight")
    _assert_one_line_value_error(lambda: load_model_state(model, [1, 2]), "dict")
    load_model_state(model, {k: v.clone() for k, v in state.items()})


# --- fuzzing ---------------------------------------------------------------------------------
def _mutations(data: bytes, rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """Seeded byte-level damage: truncations (at fixed and random offsets), flips, overwrites, insertions."""
    out = [(f"truncated at {k}", data[:k]) for k in (1, 4, 30, len(data) // 2, len(data) - 22, len(data) - 1)]
    while len(out) < n:
        kind = rng.choice(("truncate", "flip", "overwrite", "insert", "delete"))
        at = rng.randrange(len(data))
        if kind == "truncate":
            out.append((f"truncated at {at}", data[:at]))
        elif kind == "flip":
            buf = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(len(buf))
                buf[i] ^= 1 << rng.randrange(8)
            out.append(("bits flipped", bytes(buf)))
        elif kind == "overwrite":
            span = rng.randint(1, 64)
            out.append((f"overwritten at {at}", data[:at] + rng.randbytes(span) + data[at + span :]))
        elif kind == "insert":
            out.append((f"bytes inserted at {at}", data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]))
        else:
            out.append((f"bytes deleted at {at}", data[:at] + data[at + rng.randint(1, 16) :]))
    return out


def test_fuzzed_files_give_one_line_errors(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(16)
    outcomes = {"refused": 0, "still valid": 0}
    for task, loader in (("sr", _load_sr), ("seg", _load_seg)):
        data = files[task].read_bytes()
        for i, (what, mutated) in enumerate(_mutations(data, rng, 40)):
            path = tmp_path / f"{task}_{i}.pt"
            path.write_bytes(mutated)
            try:
                loader(path)
            except ValueError as err:
                msg = str(err)
                assert msg and "\n" not in msg and len(msg) < 600, (what, msg)
                outcomes["refused"] += 1
            else:
                outcomes["still valid"] += 1  # e.g. a flip in zip padding that no reader looks at
    assert outcomes["refused"] >= 60, outcomes
    # Truncation at offsets spread over the whole file (every 1/64 of it).
    data = files["sr"].read_bytes()
    for at in range(0, len(data), max(1, len(data) // 64)):
        path = tmp_path / "cut.pt"
        path.write_bytes(data[:at])
        msg = _assert_one_line_value_error(lambda path=path: _load_sr(path), "not a readable checkpoint")
        assert len(msg) < 600, msg
    # The CLI on a sample of them: exit 2 with one line, or success for a file that is still valid.
    for i in range(0, 40, 5):
        argv = _commands(tmp_path / f"seg_{i}.pt", files, tmp_path)["seg sample"]
        code = main(argv)
        err = capsys.readouterr().err
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2:
            assert err.startswith("cnf-teach: error:") and err.count("\n") == 1, err


# --- structural fuzzing of a training checkpoint (resume) --------------------------------------
def _flow() -> MultiScaleFlow:
    return MultiScaleFlow(1, levels=1, steps=2, hidden=8)


def _loss(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    (y,) = batch
    v = y + torch.rand_like(y) / 8
    bpd = -model.log_prob(v).mean() / (v[0].numel() * 0.6931471805599453)
    return bpd, {"bpd": bpd.item()}


def _loader() -> Any:
    g = torch.Generator().manual_seed(1)
    return make_loader(TensorDataset(torch.randint(0, 8, (12, 1, 4, 4), generator=g).float() / 8), 5, seed=3)


_DELETE = object()


def _replacements(value: Any) -> list[Any]:
    out: list[Any] = [_DELETE, None, "x", -1, 10**12, 2.5, True, [], {}, torch.zeros(3)]
    if isinstance(value, torch.Tensor):
        out += [value.double(), value.to(torch.int64), value.reshape(-1)[:1].clone(), value.unsqueeze(0)]
    return out


def _random_edit(ckpt: dict[str, Any], rng: random.Random) -> str:
    """Change one node of the nested checkpoint (descending at random) and say which."""
    node: Any = ckpt
    path = []
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return "nothing"
        key = rng.choice(keys)
        child = node[key]
        if isinstance(child, (dict, list)) and child and rng.random() < 0.7:
            node = child
            path.append(key)
            continue
        new = rng.choice(_replacements(child))
        if new is _DELETE and isinstance(node, dict):
            del node[key]
        elif new is _DELETE:
            node.pop(key)
        else:
            node[key] = new
        return ".".join(map(str, [*path, key])) + f" -> {'deleted' if new is _DELETE else type(new).__name__}"


def test_structurally_fuzzed_resume_gives_one_line_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(steps=2, lr=1e-2, out_dir=str(tmp_path / "run"), progress=False, device="cpu", log_every=1)
    Trainer(_flow(), _loss, _loader(), cfg, task="sr", extra_state={"name": "tiny"}).fit()
    good = tmp_path / "run" / "last.pt"
    rng = random.Random(161)
    refused = 0
    for i in range(40):
        ckpt = torch.load(good, weights_only=True)
        what = _random_edit(ckpt, rng)
        path = _write(tmp_path / f"edit_{i}.pt", ckpt)
        more = TrainConfig(steps=3, lr=1e-2, out_dir=str(tmp_path / f"out_{i}"), progress=False, device="cpu")
        try:
            trainer = Trainer.resume(path, _flow(), _loss, _loader(), more, task="sr")
            trainer.fit()  # an accepted file must also train on
        except ValueError as err:
            msg = str(err)
            assert msg and "\n" not in msg and len(msg) < 600, (what, msg)
            refused += 1
        except TrainingDiverged:
            pass  # e.g. a learning rate of 1e12: the engine's own one-line stop
    assert refused >= 20, refused


def test_resume_refuses_a_model_of_another_shape(tmp_path: Path) -> None:
    cfg = TrainConfig(steps=1, lr=1e-2, out_dir=str(tmp_path), progress=False, device="cpu")
    Trainer(_flow(), _loss, _loader(), cfg, task="sr").fit()
    other = MultiScaleFlow(1, levels=1, steps=2, hidden=16)
    _assert_one_line_value_error(
        lambda: Trainer.resume(tmp_path / "last.pt", other, _loss, _loader(), task="sr"), "shape"
    )


def test_atomic_save_leaves_the_old_file_whole_when_the_state_is_bad(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(files["sr"].read_bytes())
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_checkpoint({"task": "sr", "model": {}, "extra": io.BytesIO()}, path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
