"""Vessel models: conditional actnorm (bijective instance norm), the two CNFs, the baseline, and evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import perturb_
from helpers import brute_force_logabsdet

from cnf_teach.baselines import weighted_bce_loss
from cnf_teach.data.drive import DriveDataset
from cnf_teach.data.synthetic_retina import RetinaConfig, make_synthetic_drive
from cnf_teach.flows.conditional_actnorm import ConditionalActNorm
from cnf_teach.metrics import max_f_score, pr_curve, precision_recall
from cnf_teach.vessels import SegBaseline, SegConfig, SegFlow, build_seg_model, evaluate_seg_model, seg_loss


# --- instance normalisation inside a flow ---------------------------------------------------------
def test_literal_instance_norm_is_not_a_bijection():
    """(y - mean(y)) / std(y) per sample has a singular Jacobian: no density, hence ConditionalActNorm."""

    def literal(v, i):
        return (v - v.mean(dim=(2, 3), keepdim=True)) / v.std(dim=(2, 3), keepdim=True)

    y = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    logabsdet = brute_force_logabsdet(literal, y)
    assert (logabsdet < -20).all() or torch.isinf(logabsdet).all()


def test_conditional_actnorm_logdet_matches_brute_force():
    layer = ConditionalActNorm(4, cond_channels=3).double()
    perturb_(layer, 0.3)
    y = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    h = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    z, logdet = layer(y, h)
    assert torch.allclose(logdet, brute_force_logabsdet(lambda v, i: layer(v, h[i : i + 1])[0], y), atol=1e-8)
    assert torch.allclose(layer.inverse(z, h), y, atol=1e-10)
    # The affine map is per sample: two images get different scales from their own features.
    z2, logdet2 = layer(y, torch.flip(h, dims=[0]))
    assert not torch.allclose(logdet, logdet2)


def test_conditional_actnorm_initialises_like_actnorm():
    layer = ConditionalActNorm(3, cond_channels=2)
    y = 3.0 + 2.0 * torch.randn(4, 3, 8, 8)
    z, _ = layer(y, torch.randn(4, 2, 8, 8))
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    with pytest.raises(ValueError, match="needs h"):
        layer(y, None)


@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_conditional_actnorm_refuses_vectors_both_ways(direction: str) -> None:
    """Vectors would broadcast against the [B, C, 1, 1] scale into a [B, C, B, C] tensor: refused."""
    layer = ConditionalActNorm(3)
    with pytest.raises(ValueError, match=r"expects images \[B, C, H, W\]"):
        getattr(layer, direction)(torch.randn(2, 3))


# --- configs and models --------------------------------------------------------------------------
def test_paper_config_is_the_papers():
    cfg = SegConfig.paper_drive()
    assert (cfg.levels, cfg.steps, cfg.lr, cfg.batch_size, cfg.pad_to) == (2, 2, 1e-3, 2, 1024)
    assert (cfg.coupling_hidden, cfg.epochs, cfg.eval_samples) == (32, 2000, 100)
    assert SegConfig.from_dict(cfg.to_dict()) == cfg
    model = SegFlow(cfg)
    couplings = [m for m in model.flow.modules() if type(m).__name__ == "AdditiveCoupling"]
    norms = [m for m in model.flow.modules() if isinstance(m, ConditionalActNorm)]
    assert len(couplings) == 4 and len(norms) == 4  # L * K steps, each with conditional actnorm and additive coupling
    with pytest.raises(ValueError, match="levels must be 2"):
        SegConfig(levels=3)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return {"x": torch.rand(2, 3, 16, 16, generator=g), "y": (torch.rand(2, 1, 16, 16, generator=g) > 0.8).float()}


@pytest.mark.parametrize("kind", ["cnf_binary", "cnf_uniform", "baseline"])
def test_every_model_trains_every_parameter(kind, batch):
    model = build_seg_model(kind, SegConfig.tiny())
    loss, metrics = seg_loss(model, batch)
    assert loss.dim() == 0 and math.isfinite(loss.item()) and "bpd" in metrics
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    model.eval()
    with torch.no_grad():
        s = model.sample(batch["x"])
        soft = model.soft_map(batch["x"], num_samples=3)
    assert s.shape == (2, 1, 16, 16) and set(s.unique().tolist()) <= {0.0, 1.0}
    assert soft.shape == (2, 1, 16, 16) and 0 <= soft.min() and soft.max() <= 1
    assert model.bits_per_dim(batch["y"], batch["x"]).shape == (2,)


def test_dequantized_regions_give_back_the_mask(batch):
    """Binary dequantization puts vessels on v > 1/2 and background on v < 1/2; uniform on [1/2, 1) and [0, 1/2)."""
    for kind in ("binary", "uniform"):
        model = SegFlow(SegConfig.tiny(), kind)
        perturb_(model.dequantizer, 0.1)
        full, _ = model.features.all_features(batch["x"])
        v, log_q = model.dequantizer(batch["y"], full if kind == "binary" else None)
        assert torch.equal((v > 0.5).float(), batch["y"]) and log_q.shape == (2,)
        if kind == "uniform":
            assert 0 <= v.min() and v.max() < 1


def test_baseline_is_normalised_and_trained_with_weighted_bce(batch):
    model = SegBaseline(SegConfig.tiny())
    logits = model.logits(batch["x"])
    assert torch.allclose(model.loss(batch["y"], batch["x"]), weighted_bce_loss(batch["y"], logits, model.beta))
    p1 = model.probs(batch["x"])
    # P(all zeros) + P(all ones) pixelwise normalisation: log P(y) = sum log P(y_i) with P(0) + P(1) = 1.
    lp = model.log_prob(batch["y"], batch["x"])
    expected = torch.where(batch["y"] > 0, p1, 1 - p1).log().flatten(1).sum(1)
    assert torch.allclose(lp, expected, atol=1e-4)


def test_binary_cnf_learns_synthetic_vessels(tmp_path):
    root = make_synthetic_drive(tmp_path, num_train=4, num_test=0, config=RetinaConfig(height=32, width=32))
    ds = DriveDataset(root, "training")
    data = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("x", "y")}
    torch.manual_seed(0)
    model = SegFlow(SegConfig.tiny(), "binary")
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss, _ = seg_loss(model, data)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = model.bits_per_dim(data["y"], data["x"]).mean().item()
    assert final < 0.6 * first, (first, final)


# --- metrics and evaluation ----------------------------------------------------------------------
def test_pr_curve_matches_brute_force_thresholds():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, 200) / 5.0
    labels = rng.random(200) < 0.3
    mask = rng.random(200) < 0.8
    precision, recall, thresholds = pr_curve(scores, labels, mask)
    assert np.all(np.diff(recall) >= 0) and len(thresholds) == len(np.unique(scores[mask]))
    for p, r, t in zip(precision, recall, thresholds, strict=True):
        assert (p, r) == pytest.approx(precision_recall(scores >= t, labels, mask))
    f, t = max_f_score(scores, labels, mask)
    p, r = precision_recall(scores >= t, labels, mask)
    assert f == pytest.approx(2 * p * r / (p + r))
    assert max_f_score(labels.astype(float), labels)[0] == 1.0
    with pytest.raises(ValueError, match="no positive"):
        pr_curve(scores, np.zeros(200))


def test_evaluation_of_a_model(tmp_path):
    cfg = RetinaConfig(height=32, width=32)
    root = make_synthetic_drive(tmp_path, num_train=0, num_test=2, config=cfg)
    ds = DriveDataset(root, "test")
    torch.manual_seed(0)
    for model in (SegFlow(SegConfig.tiny()), SegBaseline(SegConfig.tiny())):
        ev = evaluate_seg_model(model, ds, num_samples=4, scatter_per_image=2)
        assert math.isfinite(ev.bpd) and 0 < ev.max_f <= 1
        assert len(ev.sample_points) == 4 and len(ev.soft_maps) == 2
        assert ev.soft_maps[0].shape == (32, 32)
        assert ev.human is not None and 0.5 < ev.human[0] <= 1 and 0.5 < ev.human[1] <= 1
        summary = ev.summary()
        assert {"bpd", "max_f", "human_f", "sample_f_mean"} <= set(summary)


def test_baseline_samples_are_bernoulli_of_the_soft_image(batch):
    """§5.2: a factored model's samples have its soft image (the network's p_j) as mean."""
    model = SegBaseline(SegConfig.tiny()).eval()
    x = batch["x"][:1]
    soft = model.soft_map(x)
    assert torch.allclose(soft, torch.sigmoid(model.logits(x)))
    torch.manual_seed(0)
    mean = torch.stack(list(model.samples(x, 400))).mean(0)
    assert (mean - soft).abs().mean() < 0.03
    normalised = torch.stack(list(model.samples(x, 400, source="normalised"))).mean(0)
    assert (normalised - model.probs(x)).abs().mean() < 0.03
    with pytest.raises(ValueError, match="soft"):
        model.sample(x, source="mode")


def test_bits_per_dim_denominators_are_labelled(tmp_path):
    """One numerator, three denominators: original-image pixels (bpd), FOV pixels, padded pixels."""
    cfg = RetinaConfig(height=30, width=26)
    root = make_synthetic_drive(tmp_path, num_train=0, num_test=1, config=cfg)
    ds = DriveDataset(root, "test", pad_to=32)
    model = SegBaseline(SegConfig.tiny())
    ev = evaluate_seg_model(model, ds, num_samples=2, scatter_per_image=1)
    item = ds[0]
    fov = int(item["mask"].sum())
    with torch.no_grad():
        total = model.bits_per_dim(item["y"][None], item["x"][None]).item() * 32 * 32
    assert ev.bpd == pytest.approx(total / (30 * 26), rel=1e-4)
    assert ev.bpd_fov == pytest.approx(total / fov, rel=1e-4)
    assert ev.bpd_padded == pytest.approx(total / (32 * 32), rel=1e-4)
    assert {"bpd", "bpd_fov", "bpd_padded"} <= set(ev.summary())
