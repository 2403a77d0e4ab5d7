"""Make the figures of the README and the documentation site from models trained here.

Run ``make figures`` (or ``python docs/make_figures.py``). Each figure is made by the
library's own code from a model trained for a few minutes on a CPU, and written at a
modest size under ``docs/assets/``:

- ``conditional-toy.png``: the conditional 2D problem of Winkler et al. 2019 (§3, the
  point of Fig. 1): $p(y \\mid x)$ is one mode at $x = -1$ and two at $x = 1$. A
  conditional flow (:class:`cnf_teach.models.VectorFlow`) learns the split; a
  factorized Gaussian $\\mathcal{N}(\\mu(x), \\sigma(x))$, the same model without
  coupling layers, can only blur the modes into one.

The script prints the test negative log-likelihoods it measured, so the numbers in
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
import torch  # noqa: E402
from tqdm.auto import trange  # noqa: E402

from cnf_teach.data import ConditionalMixture2D  # noqa: E402
from cnf_teach.models import VectorFlow  # noqa: E402

log = logging.getLogger("make_figures")

ASSETS = Path(__file__).resolve().parent / "assets"


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
    for _ in trange(steps, desc=desc, leave=False):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder for the PNGs (default docs/assets)")
    parser.add_argument("--toy-steps", type=int, default=3000, help="training steps of each toy model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and kind to a shared machine

    res = conditional_toy(args.out / "conditional-toy.png", args.toy_steps, args.seed)
    gap = res.gaussian_nll - res.flow_nll
    print(f"conditional toy ({args.toy_steps} steps each), test NLL in nats per sample:")
    print(f"  true density        {res.true_nll:7.3f}")
    print(f"  conditional flow    {res.flow_nll:7.3f}")
    print(
        f"  factorized Gaussian {res.gaussian_nll:7.3f}  (flow better by {gap:.3f} nats, {gap / math.log(2):.3f} bits)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
