"""Make the figures of the README and the documentation site from models trained here.

Run ``make figures`` (or ``python docs/make_figures.py``). Each figure is made by the
library's own code from a model trained for a few minutes on a CPU (the toy) or shipped
with the package (the vessels), and written at a
modest size under ``docs/assets/``:

- ``conditional-toy.png``: the conditional 2D problem of Winkler et al. 2019 (§3.1: a
  conditional flow can model a multimodal $p(y \\mid x)$): $p(y \\mid x)$ is one mode at $x = -1$ and two at $x = 1$. A
  conditional flow (:class:`cnf_teach.toy.VectorFlow`) learns the split; a
  factorized Gaussian $\\mathcal{N}(\\mu(x), \\sigma(x))$, the same model without
  coupling layers, can only blur the modes into one.

- ``vessels.png``: the paper's vessel-segmentation CNF (§5.2: binary variational
  dequantization, eq. (8)) and its factored weighted-Bernoulli baseline (eq. (9)): the
  shipped pretrained models ``seg-cnf-binary`` and ``seg-baseline``
  (:mod:`cnf_teach.pretrained`, trained by ``make pretrained``) on the synthetic test
  retinas their manifests are measured on: a test photograph, its labels, the CNF's mean of
  samples and one sample, the baseline's soft map, and the precision-recall curves of both
  (the paper's Figs. 4 and 5, in miniature). The figures printed are those of the manifests
  and of the Results page, measured again.

- ``sr-fig3.png``: the paper's Fig. 3 (§5.1.1) with the shipped SR models ``sr-cnf-small`` and
  ``sr-baseline-small``: CNF samples at the temperatures 0, 0.5 and 1 beside a sample of the
  factorized baseline, on crops of two bundled photographs that neither model saw in training
  (the paper's conditioning image, Set14's baboon, is not bundled); LR, bicubic and HR frame
  the panels, and the baseline's mode, which Fig. 3 does not show, is labelled as our addition
  (:func:`cnf_teach.super_resolution.figures.sr_panels`). The script prints each panel's colour
  noise on the greyscale crop.

The script prints the figures it measured, so the numbers in
the captions can be checked against a run.
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from cnf_teach.data import ConditionalMixture2D  # noqa: E402
from cnf_teach.progress import track  # noqa: E402
from cnf_teach.toy import VectorFlow  # noqa: E402

log = logging.getLogger("make_figures")

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass
class VesselResult:
    """Test bits/dim and max F-score of the vessel CNF and the factored baseline."""

    cnf_bpd: float
    cnf_f: float
    baseline_bpd: float
    baseline_f: float
    human_f: float | None


@dataclass
class ToyResult:
    """Test NLLs (nats per sample) of the two models and of the true density."""

    flow_nll: float
    gaussian_nll: float
    true_nll: float


def _fit(model: VectorFlow, target: ConditionalMixture2D, steps: int, batch: int, seed: int, desc: str) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in track(range(steps), desc=desc, leave=False):
        x = target.sample_x(batch, g)  # [B, 1]
        loss = -model.log_prob(target.sample(x, g), x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def conditional_toy(out: Path, steps: int, seed: int = 0) -> ToyResult:
    """Train a conditional flow and a factorized Gaussian on the conditional mixture; plot $p(y \\mid x)$."""
    torch.manual_seed(seed)
    target = ConditionalMixture2D()
    flow = VectorFlow(dim=2, cond_dim=1, num_layers=8, hidden=64)
    gaussian = VectorFlow(dim=2, cond_dim=1, num_layers=0, hidden=64)  # prior only: N(mu(x), sigma(x))
    _fit(flow, target, steps, 512, seed, "conditional flow")
    _fit(gaussian, target, steps, 512, seed, "factorized Gaussian")

    g = torch.Generator().manual_seed(seed + 1)
    x = target.sample_x(8192, g)
    y = target.sample(x, g)
    with torch.no_grad():
        result = ToyResult(
            flow_nll=-flow.log_prob(y, x).mean().item(),
            gaussian_nll=-gaussian.log_prob(y, x).mean().item(),
            true_nll=-target.log_prob(y, x).mean().item(),
        )

    # Densities on a grid, one column per condition x.
    xs = [-1.0, -1 / 3, 1 / 3, 1.0]
    n = 160
    g1, g2 = torch.meshgrid(torch.linspace(-2.6, 2.6, n), torch.linspace(-1.9, 1.9, n), indexing="xy")
    grid = torch.stack([g1.reshape(-1), g2.reshape(-1)], dim=1)  # [n*n, 2]
    rows = [
        ("true density", lambda yy, xx: target.log_prob(yy, xx)),
        (f"conditional flow\nNLL {result.flow_nll:.2f} nats", flow.log_prob),
        (f"factorized Gaussian\nNLL {result.gaussian_nll:.2f} nats", gaussian.log_prob),
    ]
    fig, axes = plt.subplots(len(rows), len(xs), figsize=(10, 7.2), sharex=True, sharey=True)
    with torch.no_grad():
        for r, (name, log_prob) in enumerate(rows):
            for c, xv in enumerate(xs):
                cond = torch.full((grid.shape[0], 1), xv)
                dens = log_prob(grid, cond).exp().reshape(n, n)  # [n, n]
                ax = axes[r, c]
                ax.imshow(dens.numpy(), origin="lower", extent=(-2.6, 2.6, -1.9, 1.9), cmap="magma", aspect="auto")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"$x = {xv:+.2f}$", fontsize=13)
                if c == 0:
                    ax.set_ylabel(name, fontsize=11)
    fig.suptitle(
        r"$p(y \mid x)$ splits from one mode into two as $x$ grows"
        f"  (true NLL {result.true_nll:.2f} nats)",
        fontsize=14,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return result


def _f_score(point: tuple[float, float]) -> float:
    p, r = point
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def vessels(out: Path) -> VesselResult:
    """Score the shipped binary vessel CNF and baseline as their manifests do; plot the first test retina."""
    import tempfile

    from cnf_teach.data.drive import DriveDataset
    from cnf_teach.pretrained import load
    from cnf_teach.pretrained.recipes import RECIPES
    from cnf_teach.pretrained.vessel_recipes import EVAL_IMAGES, EVAL_SAMPLES, synthetic_data
    from cnf_teach.vessels import evaluate_seg_model

    names = {"CNF (binary dequantization)": "seg-cnf-binary", "factored baseline": "seg-baseline"}
    evals = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = synthetic_data(Path(tmp) / "synthetic_drive")  # the recipes' retinas (seed 0)
        for label, name in names.items():
            model = load(name)
            test = DriveDataset(root, "test", pad_to=model.config.pad_to)
            subset = torch.utils.data.Subset(test, range(min(EVAL_IMAGES, len(test))))
            torch.manual_seed(RECIPES[name].seed)  # as the manifest's evaluation: the same numbers
            evals[label] = evaluate_seg_model(model, subset, num_samples=EVAL_SAMPLES, scatter_per_image=2, keep_maps=1)
        photo = test[0]["x"].permute(1, 2, 0).numpy()  # [H, W, 3]
        truth = test[0]["y"][0].numpy()  # [H, W]

    cnf, base = evals.values()
    panels = [
        ("photograph", photo, None),
        ("first grader", truth, "gray"),
        (f"CNF: mean of {EVAL_SAMPLES} samples", cnf.soft_maps[0], "gray"),
        ("CNF: one sample", cnf.first_samples[0], "gray"),
        ("baseline: soft map", base.soft_maps[0], "gray"),
    ]
    fig = plt.figure(figsize=(13, 3.1))
    grid = fig.add_gridspec(1, 6, width_ratios=[1, 1, 1, 1, 1, 1.25])
    for i, (title, img, cmap) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(np.clip(img, 0, 1), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    ax = fig.add_subplot(grid[0, 5])
    for (name, ev), color in zip(evals.items(), ("#d62728", "#1f77b4"), strict=True):
        ax.plot(ev.recall, ev.precision, color=color, label=f"{name.split(' (')[0]}: max F {ev.max_f:.2f}")
        pts = np.array(ev.sample_points)
        ax.scatter(pts[:, 1], pts[:, 0], s=10, color=color, alpha=0.6)
    if cnf.human is not None:
        ax.scatter([cnf.human[1]], [cnf.human[0]], marker="*", s=90, color="k", label="second grader", zorder=3)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("PR curves (dots: single samples)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return VesselResult(
        cnf_bpd=cnf.bpd,
        cnf_f=cnf.max_f,
        baseline_bpd=base.bpd,
        baseline_f=base.max_f,
        human_f=_f_score(cnf.human) if cnf.human is not None else None,
    )


#: Held-out crops for Fig. 3's samples at three temperatures (the paper's baboon is not bundled):
#: (bundled photograph, top, left); 48 x 48 LR from 96 x 96 HR.
SR_CROPS = (("chelsea", 30, 110), ("coins", 30, 30))
SR_CROP_SIZE = 96


def _colour_noise(img: np.ndarray) -> float:
    """Mean over pixels of the standard deviation of R, G, B, in grey levels (0 for a grey image)."""
    return float(img.astype("float64").std(axis=2, ddof=1).mean())


def sr_fig3(out: Path, seed: int = 0) -> dict[str, float]:
    """Fig. 3 (CNF samples at temperatures 0, 0.5, 1 beside the baseline's) on held-out crops; panels' colour noise.

    Returns:
        ``{panel title: colour noise on the greyscale crop (coins)}``, in grey levels.
    """
    from cnf_teach.data import imresize
    from cnf_teach.data.natural import natural_image
    from cnf_teach.pretrained import load
    from cnf_teach.super_resolution.figures import sr_comparison_figure, sr_panels

    cnf, baseline = load("sr-cnf-small"), load("sr-baseline-small")
    rows = []
    for name, top, left in SR_CROPS:
        img, _ = natural_image(name)  # H x W x 3 uint8
        crop = img[top : top + SR_CROP_SIZE, left : left + SR_CROP_SIZE]
        hr = torch.from_numpy(crop).permute(2, 0, 1).contiguous()  # [3, 96, 96] uint8
        lr = imresize(hr[None], scale=0.5)[0]  # [3, 48, 48], MATLAB's bicubic with antialiasing
        rows.append(sr_panels(lr, hr, cnf, baseline, seed=seed))
    fig = sr_comparison_figure(rows, panel_size=1.9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return {title: _colour_noise(img) for title, img in rows[-1] if title != "LR"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for the PNGs (default docs/assets)")
    parser.add_argument("--toy-steps", type=int, default=3000, help="training steps of each toy model")
    parser.add_argument("--only", choices=["toy", "vessels", "sr"], help="make one figure only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and kind to a shared machine

    if args.only in (None, "toy"):
        res = conditional_toy(args.out / "conditional-toy.png", args.toy_steps, args.seed)
        gap = res.gaussian_nll - res.flow_nll
        print(f"conditional toy ({args.toy_steps} steps each), test NLL in nats per sample:")
        print(f"  true density        {res.true_nll:7.3f}")
        print(f"  conditional flow    {res.flow_nll:7.3f}")
        print(
            f"  factorized Gaussian {res.gaussian_nll:7.3f}"
            f"  (flow better by {gap:.3f} nats, {gap / math.log(2):.3f} bits)"
        )
    if args.only in (None, "vessels"):
        ves = vessels(args.out / "vessels.png")
        print("vessels (shipped models, first 8 synthetic test retinas of the recipes, 16 samples):")
        print(f"  CNF, binary dequantization  {ves.cnf_bpd:.3f} bits/dim (bound)  max F {ves.cnf_f:.3f}")
        print(f"  factored baseline           {ves.baseline_bpd:.3f} bits/dim (exact)  max F {ves.baseline_f:.3f}")
        if ves.human_f is not None:
            print(f"  second grader               F {ves.human_f:.3f}")
    if args.only in (None, "sr"):
        noise = sr_fig3(args.out / "sr-fig3.png", args.seed)
        print("Fig. 3, samples by temperature (shipped SR models, held-out crops): colour noise on the grey crop:")
        for title, value in noise.items():
            print(f"  {title.replace('$', '').replace(chr(92), ''):22s} {value:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
