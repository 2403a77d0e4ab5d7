"""Fig. 3 of Winkler et al. 2019 by ``sr_panels``: CNF samples at temperatures 0, 0.5, 1, then the baseline's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnf_teach.super_resolution import SRConfig, SuperResolutionBaseline, SuperResolutionCNF
from cnf_teach.super_resolution.figures import BASELINE_MODE_TITLE, FIG3_TEMPERATURES, sr_panels


@pytest.fixture(scope="module")
def models() -> tuple[SuperResolutionCNF, SuperResolutionBaseline]:
    torch.manual_seed(0)
    config = SRConfig.tiny()
    return SuperResolutionCNF(config).eval(), SuperResolutionBaseline(config).eval()


def _images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    lr = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=g)
    hr = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=g)
    return lr, hr


def test_fig3_temperatures_are_the_papers() -> None:
    assert FIG3_TEMPERATURES == (0.0, 0.5, 1.0)  # the caption of Fig. 3: {0., 0.5, 1.0}


def test_panels_follow_fig3_and_label_the_mode_as_ours(models) -> None:
    cnf, baseline = models
    lr, hr = _images()
    panels = dict(sr_panels(lr, hr, cnf, baseline, baseline_samples=2))
    assert list(panels) == [
        "LR",
        "bicubic",
        "CNF $\\tau=0$",
        "CNF $\\tau=0.5$",
        "CNF $\\tau=1$",
        "baseline sample 1",
        "baseline sample 2",
        BASELINE_MODE_TITLE,
        "HR",
    ]
    assert BASELINE_MODE_TITLE == "baseline mode (ours)"
    assert all(img.shape == (16, 16, 3) and img.dtype == np.uint8 for title, img in panels.items() if title != "LR")
    # The baseline's samples are draws, not its mode, and two draws differ.
    mode = baseline.mode(lr[None])[0].permute(1, 2, 0).numpy()
    assert np.array_equal(panels[BASELINE_MODE_TITLE], mode)
    assert not np.array_equal(panels["baseline sample 1"], mode)
    assert not np.array_equal(panels["baseline sample 1"], panels["baseline sample 2"])
    # The CNF's panels share their noise: redrawing gives the same images, and tau changes them.
    again = dict(sr_panels(lr, hr, cnf, None))
    assert all(np.array_equal(again[t], panels[t]) for t in ("CNF $\\tau=0$", "CNF $\\tau=1$"))
    assert not np.array_equal(panels["CNF $\\tau=0$"], panels["CNF $\\tau=1$"])


def test_panels_without_models_and_bad_counts(models) -> None:
    lr, hr = _images()
    assert [t for t, _ in sr_panels(lr, hr)] == ["LR", "bicubic", "HR"]
    with pytest.raises(ValueError, match="baseline_samples"):
        sr_panels(lr, hr, None, models[1], baseline_samples=-1)


def test_docs_figure_shows_the_baselines_colour_noise(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``make figures --only sr``: only the baseline's sample shows colour noise (§5.1.1)."""
    import importlib.util
    import sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    path = Path(__file__).resolve().parents[1] / "docs" / "make_figures.py"
    spec = importlib.util.spec_from_file_location("make_figures", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_figures", module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    noise = module.sr_fig3(tmp_path / "sr-fig3.png")
    assert (tmp_path / "sr-fig3.png").stat().st_size > 10_000
    cnf = [noise[f"CNF $\\tau={t:g}$"] for t in FIG3_TEMPERATURES]
    assert noise["bicubic"] < 1e-9 and noise["HR"] < 1e-9  # the crop is greyscale
    # Measured: baseline sample 4.32 grey levels, CNF 0.23 / 0.35 / 0.64, baseline mode 0.38.
    assert noise["baseline sample"] > 3.0 and max(cnf) < 1.0 and noise[BASELINE_MODE_TITLE] < 1.0
