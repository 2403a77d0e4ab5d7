"""Binary vs uniform dequantization on thin binary structures: the paper's Table 3 at toy scale.

Winkler et al. 2019 (§5.2, Table 3) report, for the same conditional flow on DRIVE
vessel masks, 0.3366 bits/dim with uniform dequantization and 0.0254 with their
binary variational dequantization (eq. 8). This script repeats the comparison on
synthetic data: 16x16 masks of thin line segments $y$, and as conditioning input $x$
a blurred, noisy copy of the mask (so the masks are nearly, not fully, determined by
$x$, as vessels are by a fundus image).

Both runs use the same conditional :class:`~cnf_teach.flows.MultiScaleFlow` (2 levels,
4 steps, a small conditioner), the same data, steps, batch size and learning rate. They
differ only in the dequantizer:

- uniform, $K = 2$: $y = 0 \\to [0, 1/2)$, $y = 1 \\to [1/2, 1)$, $\\log q = D \\log 2$;
- binary (eq. 8): $v = 1/2 \\pm \\mathrm{softplus}(w)$, $w$ from a single-scale conditional
  flow conditioned on $y$ and $x$, trained jointly with the model.

Reported: bits/dim on held-out masks, $-\\log_2 \\hat P(y \\mid x) / D$ with $\\hat P$ the
importance-weighted bound with ``--eval-samples`` samples (an upper bound on the
discrete data's bits/dim; lower is better), and the one-sample bound. As a reference, a
factorized Bernoulli of a CNN of $x$ (the same conditioner's backbone), whose bits/dim
are exact.

Usage::

    python benchmarks/binary_vs_uniform.py            # full: a few minutes per run on CPU
    python benchmarks/binary_vs_uniform.py --smoke    # seconds
    python benchmarks/binary_vs_uniform.py --json out.json
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from common import add_common_args, machine_info, print_table, resolve_device, write_json
from skimage.draw import line
from torch import Tensor, nn

from cnf_teach.baselines import weighted_bernoulli_log_prob
from cnf_teach.dequantization import BinaryDequantization, UniformDequantization, dequantized_log_likelihood
from cnf_teach.flows import MultiScaleFlow
from cnf_teach.metrics import nats_to_bits_per_dim
from cnf_teach.nets import ConvConditioner
from cnf_teach.progress import track

log = logging.getLogger("binary_vs_uniform")


@dataclass
class Config:
    """Sizes of one comparison (``full`` and ``smoke`` below)."""

    size: int = 16
    train_images: int = 2048
    test_images: int = 256
    steps: int = 600
    batch: int = 32
    lr: float = 2e-3
    flow_steps: int = 4
    hidden: int = 32
    deq_steps: int = 2
    eval_samples: int = 16
    noise: float = 0.4

    @classmethod
    def smoke(cls) -> Config:
        return cls(train_images=64, test_images=16, steps=15, batch=8, flow_steps=1, hidden=8, eval_samples=2)


# --- data ------------------------------------------------------------------------------------------
def thin_masks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` binary masks ``[n, 1, size, size]`` of 1-3 one-pixel-wide line segments (vessel-like)."""
    masks = np.zeros((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            r0, c0, r1, c1 = rng.integers(0, size, 4)
            rr, cc = line(r0, c0, r1, c1)
            masks[i, 0, rr, cc] = 1.0
    return masks


def observe(y: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """$x$: the mask blurred by a 3x3 box filter plus Gaussian noise of std ``noise``."""
    blurred = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return blurred + noise * torch.randn(y.shape, generator=generator)


def make_data(cfg: Config, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    y_train = torch.from_numpy(thin_masks(cfg.train_images, cfg.size, rng))
    y_test = torch.from_numpy(thin_masks(cfg.test_images, cfg.size, rng))
    return y_train, observe(y_train, cfg.noise, g), y_test, observe(y_test, cfg.noise, g)


# --- models ----------------------------------------------------------------------------------------
class DequantizedFlow(nn.Module):
    """A conditional flow $p(v \\mid x)$ with a dequantizer $q(v \\mid y, x)$ for binary $y$."""

    def __init__(self, cfg: Config, kind: str) -> None:
        super().__init__()
        cc = cfg.hidden // 2
        self.flow = MultiScaleFlow(
            1,
            levels=2,
            steps=cfg.flow_steps,
            conditioner=ConvConditioner(1, cc, levels=2, hidden=cfg.hidden),
            cond_channels=cc,
            hidden=cfg.hidden,
            prior_hidden=cfg.hidden,
        )
        if kind == "uniform":
            self.deq: nn.Module = UniformDequantization(num_bins=2)
            self.deq_cond = False
        elif kind == "binary":
            # Conditioned on y and on x itself (x has y's resolution here).
            self.deq = BinaryDequantization(1, cond_channels=1, steps=cfg.deq_steps, hidden=cfg.hidden, features=cc)
            self.deq_cond = True
        else:
            raise ValueError(f"kind must be 'uniform' or 'binary', got {kind!r}")

    def log_likelihood(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        """Lower bound on $\\log P(y \\mid x)$ in nats, ``[B]`` (eq. (5); importance-weighted if S > 1)."""
        return dequantized_log_likelihood(
            lambda v: self.flow.log_prob(v, x), self.deq, y, x if self.deq_cond else None, num_samples
        )


class FactorizedBernoulli(nn.Module):
    """Reference: independent Bernoulli pixels with logits from a small CNN of $x$ (exact likelihood)."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        h = cfg.hidden
        self.net = nn.Sequential(
            nn.Conv2d(1, h, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(h, h, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(h, 1, 3, padding=1),
        )

    def log_likelihood(self, y: Tensor, x: Tensor, num_samples: int = 1) -> Tensor:
        return weighted_bernoulli_log_prob(y, self.net(x), 0.5)  # beta = 1/2: the plain Bernoulli


# --- training and evaluation -----------------------------------------------------------------------
def evaluate(model: nn.Module, y: Tensor, x: Tensor, num_samples: int, device: torch.device) -> float:
    """Mean bits/dim of the (importance-weighted) bound over ``y``."""
    model.eval()
    out = []
    with torch.no_grad():
        for yb, xb in zip(y.split(64), x.split(64), strict=True):
            ll = model.log_likelihood(yb.to(device), xb.to(device), num_samples)
            out.append(nats_to_bits_per_dim(ll, yb[0].numel()).cpu())
    model.train()
    return torch.cat(out).mean().item()


def train(name: str, model: nn.Module, data: tuple[Tensor, ...], cfg: Config, device: torch.device, seed: int) -> dict:
    y_train, x_train, y_test, x_test = data
    torch.manual_seed(seed)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in track(range(cfg.steps), desc=name, leave=False):
        idx = torch.randint(0, len(y_train), (cfg.batch,), generator=g)
        yb, xb = y_train[idx].to(device), x_train[idx].to(device)
        loss = -model.log_likelihood(yb, xb).mean() / yb[0].numel()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 50.0)
        opt.step()
        sched.step()
    seconds = time.perf_counter() - start
    return {
        "dequantization": name,
        "bpd": evaluate(model, y_test, x_test, cfg.eval_samples, device),
        "bpd_one_sample": evaluate(model, y_test, x_test, 1, device),
        "train_bpd_last_batch": loss.item() / math.log(2.0),
        "train_seconds": seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser)
    parser.add_argument("--steps", type=int, default=None, help="training steps per run (default: by mode)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    cfg = Config.smoke() if args.smoke else Config()
    if args.steps is not None:
        cfg.steps = args.steps
    data = make_data(cfg, args.seed)
    fg = data[0].mean().item()
    log.info(
        "masks %dx%d, %d train / %d test, %.1f%% foreground", cfg.size, cfg.size, len(data[0]), len(data[2]), 100 * fg
    )

    rows = []
    for name in ("uniform", "binary"):
        torch.manual_seed(args.seed)
        rows.append(train(name, DequantizedFlow(cfg, name), data, cfg, device, args.seed))
    torch.manual_seed(args.seed)
    rows.append(train("none (factorized Bernoulli, exact)", FactorizedBernoulli(cfg), data, cfg, device, args.seed))

    print_table(
        rows,
        ["dequantization", "bpd", "bpd_one_sample", "train_seconds", "parameters"],
        title=f"bits/dim on {cfg.test_images} held-out {cfg.size}x{cfg.size} masks "
        f"({cfg.steps} steps; IW bound, S={cfg.eval_samples})",
    )
    uni, bin_ = rows[0]["bpd"], rows[1]["bpd"]
    print(f"\nuniform / binary = {uni / bin_:.2f}  (paper, DRIVE, Table 3: 0.3366 / 0.0254 = {0.3366 / 0.0254:.2f})")
    write_json(args.json, {"config": asdict(cfg), "machine": machine_info(device), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
