"""Do the synthetic retinas' floors mean H(Y | x)? Two factorized models against the factorized floor.

The floors of :mod:`cnf_teach.data.annotation` are computed from the generated vessel tree. They are
the entropies given the *photograph* only if the photograph shows what the annotation depends on;
this script measures it:

1. **Exact marginals.** The factorized model whose probabilities are the process's exact pixel
   marginals $P(y_j = 1 \\mid x)$ scores the factorized floor $\\sum_j H(Y_j \\mid x) / D$ in
   expectation: its mean $-\\log_2$ over fresh annotations, with a standard error, is printed next to
   the floor (a check of the closed form, and of the scorer).
2. **Trained on photographs.** A calibrated factorized model (plain Bernoulli cross-entropy, i.e.
   eq. (9) with $\\beta = 1/2$, whose optimum is the marginals) of a full-resolution convolutional
   network trained on photographs and one annotation each. The closer it gets to the floor, the
   more of what the grader's marginals depend on the photograph shows; the gap that is left is the
   network's and the photograph's together (an upper bound on what the photograph hides).
3. **Without the pixel noise** (``--no-pixel-noise``): the same probe on the same retinas and annotations
   with the noise left out of the photographs (:func:`~cnf_teach.data.synthetic_retina.draw_retina`'s
   ``pixel_noise=False``). Against item 2 it splits that gap: what is left without the noise is the
   network's (and what a clean photograph still hides); what the noise adds is the noise's.

Usage::

    python benchmarks/seg_floors.py [--smoke] [--steps N] [--train N] [--no-pixel-noise] [--augment flip|warp]
        [--json OUT]

``--smoke`` (CI) runs a few steps on 32x32 retinas. The full mode trains on ``--train`` 96x96
retinas (default 400, seed 100) and scores the 20 test retinas of seed 7, which it never saw.
The probe sees each training retina in a random one of its four mirror images (``--augment flip``,
the shipped vessel models' augmentation), or warped by the rotations, scalings and shears of §5.2
(``--augment warp``), which resample the photograph and the label.

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5.2, eq. (9).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import add_common_args, machine_info, print_table, resolve_device, write_json
from torch import nn

from cnf_teach.data.augment import FlipAugment, JointAugment
from cnf_teach.data.drive import DriveDataset
from cnf_teach.data.synthetic_retina import RetinaConfig, draw_retina, make_synthetic_drive, read_floors
from cnf_teach.engine import TrainConfig, Trainer, make_loader


class FullResolutionProbe(nn.Module):
    """A factorized segmenter at full resolution: dilated 3x3 convolutions (receptive field 63 px) -> logits."""

    def __init__(self, width: int = 32, dilations: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1)]
        for d in dilations:
            conv = nn.Conv2d(width, width, 3, padding=d, dilation=d)
            layers += [nn.InstanceNorm2d(width, affine=True), nn.ReLU(), conv]
        layers += [nn.ReLU(), nn.Conv2d(width, 1, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, 1, H, W] logits
        return self.net(x)


def probe_loss(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict]:
    """Bits per pixel of the plain Bernoulli (calibrated: its optimum is every pixel's marginal)."""
    logits = model(batch["x"])
    bits = nn.functional.binary_cross_entropy_with_logits(logits, batch["y"]) / math.log(2)
    return bits, {"bpd": bits.detach()}


def exact_marginals_check(size: int, images: int, draws: int, seed: int) -> dict:
    """Mean -log2 of fresh annotations under the exact marginals, against the factorized floor (bits/FOV px)."""
    rng = np.random.default_rng(seed)
    scores, floors = [], []
    for _ in range(images):
        retina = draw_retina(RetinaConfig(height=size, width=size), rng)
        m = retina.process.pixel_marginals()
        n_fov = int(retina.mask.sum())
        with np.errstate(divide="ignore"):
            log_on, log_off = np.log2(m), np.log2(1 - m)
        for y in retina.process.sample(rng, draws):
            scores.append(-np.where(y > 0, log_on, log_off).sum() / n_fov)
        floors.append(retina.process.factorized_bits() / n_fov)
    s = np.array(scores)
    return {"score": float(s.mean()), "se": float(s.std(ddof=1) / math.sqrt(len(s))), "floor": float(np.mean(floors))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--train", type=int, default=400, help="training retinas")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--no-pixel-noise", action="store_true", help="train and test the probe on the photographs without pixel noise"
    )
    parser.add_argument(
        "--augment", choices=["flip", "warp"], default="flip", help="mirror images (default) or the paper's warps"
    )
    add_common_args(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    size, steps, n_train, n_test = (32, 3, 4, 2) if args.smoke else (96, args.steps, args.train, 20)
    cfg = RetinaConfig(height=size, width=size)
    with tempfile.TemporaryDirectory() as tmp:
        noise = not args.no_pixel_noise
        train_root = make_synthetic_drive(
            Path(tmp) / "train", num_train=n_train, num_test=0, config=cfg, seed=100, pixel_noise=noise
        )
        test_root = make_synthetic_drive(
            Path(tmp) / "test", num_train=0, num_test=n_test, config=cfg, seed=7, pixel_noise=noise
        )
        floors = read_floors(test_root)["mean"]
        torch.manual_seed(0)
        model = FullResolutionProbe()
        augment = FlipAugment() if args.augment == "flip" else JointAugment()
        data = DriveDataset(train_root, "training", augment=augment)
        loader = make_loader(data, args.batch_size, seed=0)
        tcfg = TrainConfig(
            steps=steps, lr=args.lr, batch_size=args.batch_size, grad_clip=1.0, lr_schedule="cosine",
            device=str(device), seed=0, log_every=max(1, steps // 10), progress=False,
        )  # fmt: skip
        start = time.process_time()
        Trainer(model, probe_loss, loader, tcfg, task="seg", extra_state={}).fit()
        cpu = time.process_time() - start
        model.eval()
        test = DriveDataset(test_root, "test")
        per_fov = []
        with torch.no_grad():
            for i in range(len(test)):
                item = test[i]
                logits = model(item["x"][None].to(device))[0, 0].cpu()
                y = item["y"][0]
                bits = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum") / math.log(2)
                per_fov.append(float(bits) / float(item["mask"].sum()))
    exact = exact_marginals_check(size, 2 if args.smoke else 20, 5 if args.smoke else 50, seed=7)
    probe = float(np.mean(per_fov))
    rows = [
        {"model": "exact marginals (fresh annotations)", "bpd_fov": exact["score"], "note": f"± {exact['se']:.4f}"},
        {"model": "factorized floor of those retinas", "bpd_fov": exact["floor"], "note": "closed form"},
        {
            "model": f"full-resolution probe, {steps} steps, {args.augment}" + ("" if noise else ", no pixel noise"),
            "bpd_fov": probe,
            "note": f"{cpu / 60:.1f} CPU-min",
        },
        {"model": "factorized floor, test", "bpd_fov": floors["factorized_per_fov_pixel"], "note": "closed form"},
        {"model": "entropy floor, test", "bpd_fov": floors["entropy_per_fov_pixel"], "note": "closed form"},
    ]
    print_table(rows, ["model", "bpd_fov", "note"], title="bits/dim per field-of-view pixel")
    if args.json:
        settings = {k: str(v) for k, v in vars(args).items()}
        write_json(args.json, {"machine": machine_info(device), "args": settings, "rows": rows, "exact": exact})


if __name__ == "__main__":
    main()
