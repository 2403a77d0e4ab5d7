"""The shipped pretrained models: manifests complete, weights safe and small, metrics reproducible.

Every model in ``cnf_teach/pretrained/weights`` is reloaded and scored again with the fixed
evaluation of its recipe; the figures must match its manifest (float32 arithmetic on the same
float16 weights, seeded noise: they agree to round-off, and the tolerance leaves room for a
different CPU's summation order).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from cnf_teach import pretrained
from cnf_teach.engine import load_checkpoint
from cnf_teach.pretrained.recipes import RECIPES, evaluate

NAMES = pretrained.available()
REQUIRED = {"name", "task", "kind", "config", "seed", "steps", "wall_seconds", "cpu_seconds", "curve", "metrics"}
#: Absolute tolerance per metric: bits/dim and F to 1e-3, PSNR to 0.01 dB.
TOLERANCE = {
    "bpd": 1e-3,
    "bpd_image": 1e-3,
    "bpd_fov": 1e-3,
    "max_f": 1e-3,
    "sample_f": 1e-3,
    "sample_precision": 1e-3,
    "sample_recall": 1e-3,
    "human_f": 1e-9,
    "psnr_y": 0.01,
}


def test_every_recipe_ships() -> None:
    missing = sorted(set(RECIPES) - set(NAMES))
    assert not missing, f"recipes without shipped weights: {missing}; run `make pretrained MODEL=...`"


def test_weights_are_small() -> None:
    total = sum((pretrained.WEIGHTS / f"{n}.pt").stat().st_size for n in NAMES)
    assert total < 12 * 2**20, f"shipped weights take {total / 2**20:.1f} MB; the budget is 12 MB"


@pytest.mark.parametrize("name", NAMES)
def test_manifest_is_complete(name: str) -> None:
    meta = pretrained.manifest(name)
    assert REQUIRED <= set(meta), f"{name}: manifest lacks {sorted(REQUIRED - set(meta))}"
    assert meta["name"] == name and meta["steps"] == RECIPES[name].steps
    assert meta["curve"] and all(math.isfinite(b) for _, b in meta["curve"])
    assert meta["dtype"] == "float16"
    if meta["task"] == "sr":  # the budget: at least 30 CPU-minutes per SR model
        assert meta["cpu_seconds"] >= 1800, f"{name} trained {meta['cpu_seconds']:.0f} CPU-s, under 30 minutes"


@pytest.mark.parametrize("name", NAMES)
def test_weights_are_safe_float16_checkpoints(name: str) -> None:
    """The package's safe format (tensors and plain data only), parameters in float16."""
    ckpt = load_checkpoint(pretrained.WEIGHTS / f"{name}.pt")
    assert ckpt["task"] == RECIPES[name].task
    assert {v.dtype for v in ckpt["model"].values() if v.is_floating_point()} == {torch.float16}


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    """One folder for the synthetic retinas the vessel evaluations share."""
    return tmp_path_factory.mktemp("pretrained")


@pytest.mark.parametrize("name", NAMES)
def test_metrics_reproduce(name: str, work_dir) -> None:
    meta = pretrained.manifest(name)
    model = pretrained.load(name)
    got = evaluate(name, model, work_dir=work_dir)["mean"]
    for key, want in meta["metrics"]["mean"].items():
        if want is None or key not in TOLERANCE and not key.startswith("psnr"):
            continue
        tol = TOLERANCE.get(key, 0.01)
        assert abs(got[key] - want) <= tol, f"{name}: {key} = {got[key]:.5f}, manifest says {want:.5f} (tol {tol})"


def test_unknown_name_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="no pretrained model 'nope'"):
        pretrained.load("nope")


def test_corrupt_weights_are_refused(tmp_path) -> None:
    """Truncated or foreign files give a one-line ValueError."""
    if not NAMES:
        pytest.skip("no shipped weights")
    name = NAMES[0]
    (tmp_path / f"{name}.json").write_text(json.dumps(pretrained.manifest(name)))
    raw = (pretrained.WEIGHTS / f"{name}.pt").read_bytes()
    (tmp_path / f"{name}.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError) as err:
        pretrained.load(name, folder=tmp_path)
    assert "\n" not in str(err.value)
    torch.save({"a": 1}, tmp_path / f"{name}.pt")
    with pytest.raises(ValueError) as err:
        pretrained.load(name, folder=tmp_path)
    assert "\n" not in str(err.value)


def test_cli_takes_pretrained_names(tmp_path, capsys) -> None:
    """``--pretrained NAME`` works wherever ``--checkpoint`` does; the other task's name is a one-line error."""
    from PIL import Image

    from cnf_teach.cli import main

    if not {"sr-cnf-small", "seg-baseline"} <= set(NAMES):
        pytest.skip("shipped weights missing")
    image = tmp_path / "lr.png"
    Image.fromarray(torch.randint(0, 256, (12, 16, 3), dtype=torch.uint8).numpy()).save(image)
    out = tmp_path / "sr.png"
    assert main(["sr", "sample", "--pretrained", "sr-cnf-small", "--image", str(image), "--out", str(out)]) == 0
    assert Image.open(out).size == (32, 24)
    seg_out = tmp_path / "seg.png"
    args = ["seg", "sample", "--pretrained", "seg-baseline", "--retina", "--size", "64", "--samples", "2"]
    assert main([*args, "--out", str(seg_out)]) == 0
    assert seg_out.is_file()
    capsys.readouterr()
    other = tmp_path / "other.png"  # a new file: an existing --out is refused before the model is read
    assert main(["sr", "sample", "--pretrained", "seg-baseline", "--image", str(image), "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'seg' model" in err, err
    both = ["sr", "sample", "--pretrained", "sr-cnf-small", "--checkpoint", "x.pt", "--image", str(image)]
    assert main([*both, "--out", str(other)]) == 2
