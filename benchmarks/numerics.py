"""Numerical quality of the paper's flows at full size: round trips and log-determinants in float32 vs float64.

For each configuration the model is built in float32, its actnorm layers initialised on
a random batch, and its zero-initialised output layers (coupling and prior networks)
re-drawn at ``--init-scale`` times PyTorch's default initialisation, so that every
coupling really transforms its input (a freshly built flow is nearly the identity, which
would flatter the errors). A float64 copy of the *same* weights is the reference. On
random inputs we report

- ``round_trip``: $\\max|f^{-1}(f(y)) - y|$ in float32 (and ``round_trip_f64`` in float64);
- ``latent_round_trip``: $\\max|f(f^{-1}(z)) - z|$ for $z \\sim \\mathcal{N}(0, I)$, the
  sampling direction, in float32;
- ``latent_err``: $\\max|f_{32}(y) - f_{64}(y)|$ over all latents;
- ``logdet_err``: $\\max_b|\\log|\\det J|_{32} - \\log|\\det J|_{64}|$ in nats, and
  ``logdet_rel_err`` the same divided by $|\\log|\\det J|_{64}|$;
- ``log_prob_err_bpd``: the float32 error of $\\log p(y \\mid x)$ in bits per dimension.

Configurations (paper sizes, Winkler et al. 2019):

- ``sr_imagenet64``: the 2x super-resolution CNF on 64x64 HR images
  (:meth:`cnf_teach.super_resolution.SRConfig.paper_imagenet64`: $L = 2$, $K = 8$, coupling
  width 512, RRDB features of 128 channels; §5.1, Table 6) on random 8-bit LR images;
- ``drive_1024``: the vessel-segmentation flow part on 1024x1024 masks, $L = 2$, $K = 2$,
  additive couplings of width 32 (§5.2, Table 7), actnorm for normalisation, behind a
  small convolutional conditioner of 32 channels.

The conditioning features $h = g(x)$ are computed once, in float32, and handed to both
the float32 flow and its float64 copy: the conditioner only feeds features in, it is not
part of the bijection whose numerics are measured.

Usage::

    python benchmarks/numerics.py [--smoke] [--json OUT] [--device auto|cpu|cuda]

References:
    Winkler et al. Learning Likelihoods with Conditional Normalizing Flows, 2019, §5, Tables 6, 7.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from common import add_common_args, machine_info, print_table, resolve_device, write_json
from torch import Tensor, nn

from cnf_teach.flows import MultiScaleFlow
from cnf_teach.nets import ConvConditioner

log = logging.getLogger("benchmarks.numerics")


@dataclass
class NumericsConfig:
    """One flow to check: its data shape and architecture."""

    name: str
    channels: int
    size: int
    levels: int
    steps: int
    hidden: int
    cond_channels: int
    coupling: str = "affine"
    batch: int = 4


CONFIGS: dict[str, NumericsConfig] = {
    "sr_imagenet64": NumericsConfig("sr_imagenet64", 3, 64, 2, 8, 512, 128, "affine", batch=4),
    "drive_1024": NumericsConfig("drive_1024", 1, 1024, 2, 2, 32, 32, "additive", batch=1),
}
SMOKE: dict[str, NumericsConfig] = {
    "sr_smoke": NumericsConfig("sr_smoke", 3, 16, 2, 2, 16, 8, "affine", batch=2),
    "drive_smoke": NumericsConfig("drive_smoke", 1, 32, 2, 2, 8, 8, "additive", batch=1),
}


class _GivenFeatures(nn.Module):
    """A flow's conditioner when the features are computed outside: passes ``[h_0, ..., h_{L-1}]`` through."""

    def forward(self, hs: list[Tensor]) -> list[Tensor]:
        return hs


#: Builds ``(flow, features)``: the flow (its conditioner passing features through) and ``x -> g(x)``.
Builder = Callable[[NumericsConfig, torch.device], tuple[MultiScaleFlow, Callable[[Tensor], list[Tensor]]]]


def build_flow(cfg: NumericsConfig, device: torch.device) -> tuple[MultiScaleFlow, Callable[[Tensor], list[Tensor]]]:
    """The paper's flow part for ``cfg`` and a small conditioner ($x$ at half resolution)."""
    conditioner = ConvConditioner(cfg.channels, cfg.cond_channels, cfg.levels, upscale=2, hidden=32).to(device)
    flow = MultiScaleFlow(
        cfg.channels,
        levels=cfg.levels,
        steps=cfg.steps,
        conditioner=_GivenFeatures(),
        cond_channels=cfg.cond_channels,
        hidden=cfg.hidden,
        coupling=cfg.coupling,
    ).to(device)
    return flow, lambda x: conditioner(x.float() / 255 - 0.5)


def build_sr(cfg: NumericsConfig, device: torch.device) -> tuple[MultiScaleFlow, Callable[[Tensor], list[Tensor]]]:
    """The SR CNF of :mod:`cnf_teach.super_resolution` (paper ImageNet64 config) when the module is there."""
    try:
        from cnf_teach.super_resolution import SRConfig, SuperResolutionCNF
    except ImportError:
        log.warning("cnf_teach.super_resolution is not available; measuring the same flow behind a small conditioner")
        return build_flow(cfg, device)
    sr_cfg = SRConfig.paper_imagenet64()
    if (sr_cfg.levels, sr_cfg.steps, sr_cfg.hidden, sr_cfg.rrdb_features) != (
        cfg.levels,
        cfg.steps,
        cfg.hidden,
        cfg.cond_channels,
    ):
        raise RuntimeError(f"SRConfig.paper_imagenet64() no longer matches {cfg}; update CONFIGS")
    model = SuperResolutionCNF(sr_cfg).to(device)
    return model.flow, lambda x: model.features(x)[: cfg.levels]


@torch.no_grad()
def randomize_zero_layers_(model: nn.Module, scale: float) -> int:
    """Re-draw every all-zero convolution at ``scale`` x the default init; return how many."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and not module.weight.any():
            module.reset_parameters()
            module.weight.mul_(scale)
            if module.bias is not None:
                module.bias.mul_(scale)
            count += 1
    return count


def _max_abs(a: Tensor, b: Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@torch.no_grad()
def measure(cfg: NumericsConfig, device: torch.device, seed: int, init_scale: float, build: Builder) -> dict:
    """Round-trip and log-det errors of one configuration (see the module docstring)."""
    torch.manual_seed(seed)
    flow32, features = build(cfg, device)
    y = torch.rand(cfg.batch, cfg.channels, cfg.size, cfg.size, device=device) - 0.5  # dequantized, centred
    x = torch.randint(0, 256, (cfg.batch, cfg.channels, cfg.size // 2, cfg.size // 2), device=device)  # 8-bit LR
    hs32 = [h.detach() for h in features(x)]
    flow32.train()
    flow32.log_prob(y, hs32)  # actnorm data-dependent initialisation
    randomized = randomize_zero_layers_(flow32, init_scale)
    flow32.eval()
    flow64 = copy.deepcopy(flow32).double()
    y64, hs64 = y.double(), [h.double() for h in hs32]

    z32, ld32 = flow32.transform(y, hs32)
    z64, ld64 = flow64.transform(y64, hs64)
    back32 = flow32.inverse_transform(z32, hs32)
    back64 = flow64.inverse_transform(z64, hs64)
    eps = [torch.randn_like(z) for z in z32]
    eps_back, _ = flow32.transform(flow32.inverse_transform(eps, hs32), hs32)
    lp32, lp64 = flow32.log_prob(y, hs32), flow64.log_prob(y64, hs64)
    dims = y[0].numel()
    row = {
        "config": cfg.name,
        "shape": f"{cfg.batch}x{cfg.channels}x{cfg.size}x{cfg.size}",
        "L": cfg.levels,
        "K": cfg.steps,
        "hidden": cfg.hidden,
        "coupling": cfg.coupling,
        "randomized_layers": randomized,
        "round_trip": _max_abs(back32, y),
        "round_trip_f64": _max_abs(back64, y64),
        "latent_round_trip": max(_max_abs(a, b) for a, b in zip(eps_back, eps, strict=True)),
        "latent_err": max(_max_abs(a, b) for a, b in zip(z32, z64, strict=True)),
        "logdet_per_dim": (ld64.abs().mean() / dims).item(),
        "logdet_err": _max_abs(ld32, ld64),
        "logdet_rel_err": ((ld32.double() - ld64).abs() / ld64.abs().clamp_min(1e-300)).max().item(),
        "log_prob_err_bpd": _max_abs(lp32, lp64) / (dims * math.log(2.0)),
        "bits_per_dim": (-lp64.mean() / (dims * math.log(2.0))).item(),
    }
    if not all(math.isfinite(v) for v in row.values() if isinstance(v, float)):
        raise RuntimeError(f"non-finite result for {cfg.name}: {row}; lower --init-scale")
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--init-scale", type=float, default=0.5, help="scale of the re-drawn zero layers")
    parser.add_argument("--configs", nargs="*", default=None, help=f"subset of {list(CONFIGS)}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    table = SMOKE if args.smoke else CONFIGS
    names = args.configs or list(table)
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f"unknown configuration(s) {unknown}; choose from {list(table)}")
    rows = []
    for name in names:
        log.info("measuring %s ...", name)
        build = build_sr if name == "sr_imagenet64" else build_flow
        rows.append(measure(table[name], device, args.seed, args.init_scale, build))
    cols = ["config", "shape", "L", "K", "hidden", "round_trip", "round_trip_f64", "latent_round_trip"]
    cols += ["latent_err", "logdet_per_dim", "logdet_err", "logdet_rel_err", "log_prob_err_bpd"]
    print_table(rows, cols, f"float32 against float64 on {device}")
    write_json(args.json, {"machine": machine_info(device), "configs": [asdict(table[n]) for n in names], "rows": rows})
    return rows


if __name__ == "__main__":
    main()
