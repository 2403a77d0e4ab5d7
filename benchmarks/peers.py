"""cnf_teach against peer libraries: one Glow-style multi-scale flow, built three times, timed in one run.

The same unconditional flow (Kingma & Dhariwal 2018) is built from

- ``cnf_teach``: :class:`cnf_teach.flows.MultiScaleFlow`;
- ``normflows`` (Stimper et al. 2023): ``GlowBlock`` levels in ``MultiscaleFlow``;
- ``FrEIA`` (Ardizzone et al.): a ``GraphINN`` of ``IRevNetDownsampling``, ``ActNorm``,
  ``Fixed1x1Conv``, ``AffineCouplingOneSided`` and ``Split`` nodes.

Equal configuration: $L$ levels of $K$ steps (actnorm -> 1x1 conv -> affine coupling
whose network is conv3x3(hidden) - ReLU - conv1x1(hidden) - ReLU - conv3x3, the last
zero-initialised), half of the channels factored out after every level but the last,
same image size and batch. Two choices make the parameter counts match exactly:

- The factored-out halves and the top latent get a fixed $\\mathcal{N}(0, I)$ in all
  three models. normflows' multi-scale flow has no learned split prior conditioned on
  the kept half, so cnf_teach's split-prior networks are swapped for one that returns
  zeros ($\\mu = 0$, $\\log\\sigma = 0$).
- Like with like in the 1x1 convolutions: they are learned and LU-parametrised in normflows,
  and the ``cnf_teach`` model of its row is too. FrEIA has no learned 1x1 convolution, so its
  row uses a fixed random rotation (``Fixed1x1Conv``), and the ``cnf_teach`` model of that row
  is built with fixed rotations as well (``MultiScaleFlow(mixing="rotation")``,
  :class:`cnf_teach.flows.FixedRotation`): both have $2C^2 + C$ fewer trainable parameters per
  step than the learned pair, and each row times the same computation.

Measures: ``train_step`` = forward (``-log p(y)`` averaged over the batch) + backward;
``sample`` = drawing a batch at temperature 1 without gradients. Each is the median of
``--reps`` interleaved repetitions after warm-up (all four models interleaved);
``ratio`` = cnf_teach / peer, the median of per-repetition ratios (see ``common.py``), with
``ours`` naming the cnf_teach model of the row. Below 1 means cnf_teach is faster.

Usage::

    python benchmarks/peers.py [--smoke] [--json OUT] [--device auto|cpu|cuda]

References:
    Kingma, Dhariwal. Glow: Generative Flow with Invertible 1x1 Convolutions. NeurIPS 2018.
    Stimper et al. normflows: A PyTorch Package for Normalizing Flows. JOSS 2023.
    Ardizzone et al. FrEIA: Framework for Easily Invertible Architectures. github.com/vislearn/FrEIA.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from common import (
    add_common_args,
    interleaved_times,
    machine_info,
    median_ratio,
    print_table,
    ratio_quartiles,
    resolve_device,
    write_json,
)
from torch import Tensor, nn

from cnf_teach.distributions import gaussian_log_prob
from cnf_teach.flows import Mixing, MultiScaleFlow

log = logging.getLogger("benchmarks.peers")


@dataclass
class GlowConfig:
    """The flow every library builds."""

    channels: int = 3
    size: int = 32
    levels: int = 2
    steps: int = 8
    hidden: int = 512
    batch: int = 16

    @classmethod
    def smoke(cls) -> GlowConfig:
        return cls(channels=3, size=8, levels=2, steps=2, hidden=16, batch=4)


class _StandardNormalParams(nn.Module):
    """Stands in for a split prior's network: $\\mu = 0$, $\\log\\sigma = 0$ everywhere."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.out_channels = out_channels

    def forward(self, z0: Tensor) -> Tensor:  # [B, keep, H, W] -> [B, out, H, W]
        return z0.new_zeros(z0.shape[0], self.out_channels, *z0.shape[2:])


def coupling_net(c_in: int, c_out: int, hidden: int) -> nn.Sequential:
    """conv3x3(hidden) - ReLU - conv1x1(hidden) - ReLU - zero conv3x3(c_out), as in all three models."""
    last = nn.Conv2d(hidden, c_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last
    )


# --- the three builds: each returns (module, nll(y) -> [B], sample(batch) -> images) -------------------------
Built = tuple[nn.Module, Callable[[Tensor], Tensor], Callable[[int], Tensor]]


def build_cnf_teach(cfg: GlowConfig, mixing: Mixing = "learned") -> Built:
    flow = MultiScaleFlow(cfg.channels, levels=cfg.levels, steps=cfg.steps, hidden=cfg.hidden, lu=True, mixing=mixing)
    for split in flow.splits:  # fixed N(0, I) for the factored-out half, as the peers have
        split.net = _StandardNormalParams(2 * (split.num_channels - split.keep))
    shape = (0, cfg.channels, cfg.size, cfg.size)
    return flow, lambda y: -flow.log_prob(y), lambda b: flow.sample(shape=(b, *shape[1:]))


def build_normflows(cfg: GlowConfig) -> Built:
    import normflows as nf

    c, size, levels = cfg.channels, cfg.size, cfg.levels
    flows, merges, q0 = [], [], []
    for i in range(levels):  # normflows counts levels from the top (coarsest) down
        blocks = [
            nf.flows.GlowBlock(
                c * 2 ** (levels + 1 - i),
                cfg.hidden,
                scale=True,
                scale_map="sigmoid",
                split_mode="channel",
                use_lu=True,
            )
            for _ in range(cfg.steps)
        ]
        flows.append([*blocks, nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            shape = (c * 2 ** (levels - i), size // 2 ** (levels - i), size // 2 ** (levels - i))
        else:
            shape = (c * 2 ** (levels + 1), size // 2**levels, size // 2**levels)
        q0.append(nf.distributions.DiagGaussian(shape, trainable=False))
    model = nf.MultiscaleFlow(q0, flows, merges, class_cond=False)

    @torch.no_grad()
    def sample(b: int) -> Tensor:
        return model.sample(b)[0]

    return model, lambda y: -model.log_prob(y, None), sample


def build_freia(cfg: GlowConfig) -> Built:
    import FrEIA.framework as ff
    import FrEIA.modules as fm

    def subnet(c_in: int, c_out: int) -> nn.Module:
        return coupling_net(c_in, c_out, cfg.hidden)

    nodes: list[ff.Node] = [ff.InputNode(cfg.channels, cfg.size, cfg.size, name="y")]
    outputs: list[ff.Node] = []
    latent_shapes: list[tuple[int, int, int]] = []
    c, s = cfg.channels, cfg.size
    last: ff.Node | tuple[ff.Node, int] = nodes[0]
    for level in range(cfg.levels):
        nodes.append(ff.Node(last, fm.IRevNetDownsampling, {}))
        last, c, s = nodes[-1], 4 * c, s // 2
        for _ in range(cfg.steps):
            rotation, _ = torch.linalg.qr(torch.randn(c, c))
            nodes.append(ff.Node(last, fm.ActNorm, {}))
            nodes.append(ff.Node(nodes[-1], fm.Fixed1x1Conv, {"M": rotation}))
            nodes.append(
                ff.Node(
                    nodes[-1],
                    fm.AffineCouplingOneSided,
                    {"subnet_constructor": subnet, "clamp_activation": "SIGMOID"},
                )
            )
            last = nodes[-1]
        if level < cfg.levels - 1:
            keep = c - c // 2
            split = ff.Node(last, fm.Split, {"section_sizes": [keep, c // 2], "dim": 0})
            nodes.append(split)
            outputs.append(ff.OutputNode((split, 1)))
            latent_shapes.append((c // 2, s, s))
            last, c = (split, 0), keep
    outputs.append(ff.OutputNode(last))
    latent_shapes.append((c, s, s))
    model = ff.GraphINN(nodes + outputs)

    def nll(y: Tensor) -> Tensor:
        zs, logdet = model(y)
        return -(logdet + sum(gaussian_log_prob(z) for z in zs))

    @torch.no_grad()
    def sample(b: int) -> Tensor:
        ref = next(model.parameters())
        zs = [torch.randn(b, *shp, device=ref.device, dtype=ref.dtype) for shp in latent_shapes]
        return model(zs, rev=True, jac=False)[0]

    return model, nll, sample


def build_cnf_teach_fixed(cfg: GlowConfig) -> Built:
    """cnf_teach with fixed random rotations for the 1x1 convolutions, as FrEIA's model has."""
    return build_cnf_teach(cfg, mixing="rotation")


PEERS: dict[str, Callable[[GlowConfig], Built]] = {"normflows": build_normflows, "FrEIA": build_freia}
#: The cnf_teach model each peer is timed against: the same 1x1 convolutions (learned or fixed).
OURS: dict[str, str] = {"normflows": "cnf_teach", "FrEIA": "cnf_teach_fixed"}


def trainable_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def available_peers() -> dict[str, Callable[[GlowConfig], Built]]:
    """The peers whose packages import here; the others are reported and left out."""
    found = {}
    for name, build in PEERS.items():
        try:
            __import__(name)
        except ImportError:
            log.warning("peer %s is not installed (pip install 'cnf_teach[bench]'); leaving it out", name)
            continue
        found[name] = build
    return found


def run(cfg: GlowConfig, device: torch.device, reps: int, warmup: int, seed: int) -> dict:
    """Build every model, check they agree in size, time them interleaved; return the result."""
    peers = available_peers()
    builders: dict[str, Callable[[GlowConfig], Built]] = {"cnf_teach": build_cnf_teach}
    if "FrEIA" in peers:
        builders["cnf_teach_fixed"] = build_cnf_teach_fixed
    builders.update(peers)
    models: dict[str, Built] = {}
    for name, build in builders.items():
        torch.manual_seed(seed)
        models[name] = build(cfg)
        models[name][0].to(device).train()
    params = {name: trainable_parameters(m[0]) for name, m in models.items()}

    y = torch.rand(cfg.batch, cfg.channels, cfg.size, cfg.size, device=device) - 0.5  # dequantized pixels
    # Data-dependent actnorm initialisation on the same batch for everyone, then check the densities are sane.
    nll0 = {}
    for name, (_, nll, _) in models.items():
        with torch.no_grad():
            nll0[name] = nll(y).mean().item() / (math.log(2) * y[0].numel())  # bits/dim at initialisation
    bad = {k: v for k, v in nll0.items() if not math.isfinite(v)}
    if bad:
        raise RuntimeError(f"non-finite NLL at initialisation: {bad}")

    def train_step(model: nn.Module, nll: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            nll(y).mean().backward()

        return step

    def sampler(fn: Callable[[int], Tensor]) -> Callable[[], Tensor]:
        return lambda: fn(cfg.batch)

    times = {
        "train_step": interleaved_times(
            {n: train_step(m, nll) for n, (m, nll, _) in models.items()}, device, reps, warmup
        ),
        "sample": interleaved_times({n: sampler(s) for n, (_, _, s) in models.items()}, device, reps, warmup),
    }
    rows = []
    for measure, per_lib in times.items():
        for peer in peers:
            ours = per_lib[OURS[peer]]
            rows.append(
                {
                    "peer": peer,
                    "ours": OURS[peer],
                    "measure": measure,
                    "ratio": median_ratio(ours, per_lib[peer]),
                    "ratio_q1_q3": ratio_quartiles(ours, per_lib[peer]),
                    "ours_s": statistics.median(ours),
                    "peer_s": statistics.median(per_lib[peer]),
                    "reps": reps,
                }
            )
    return {
        "config": asdict(cfg),
        "params": params,
        "bits_per_dim_at_init": nll0,
        "machine": machine_info(device),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    defaults = GlowConfig()
    for field in ("channels", "size", "levels", "steps", "hidden", "batch"):
        parser.add_argument(f"--{field}", type=int, default=None, help=f"default {getattr(defaults, field)}")
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions (at least 10 for the table)")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = GlowConfig.smoke() if args.smoke else GlowConfig()
    for field in ("channels", "size", "levels", "steps", "hidden", "batch"):
        if getattr(args, field) is not None:
            setattr(cfg, field, getattr(args, field))
    device = resolve_device(args.device)

    result = run(cfg, device, args.reps, args.warmup, args.seed)
    print(f"\nGlow-style flow {asdict(cfg)} on {device}, {args.reps} interleaved repetitions")
    print_table(
        [{"library": k, "trainable parameters": v} for k, v in result["params"].items()],
        ["library", "trainable parameters"],
        "Parameters (cnf_teach_fixed and FrEIA: fixed 1x1 rotations, see the docstring)",
    )
    print_table(
        result["rows"],
        ["peer", "ours", "measure", "ratio", "ratio_q1_q3", "ours_s", "peer_s"],
        "cnf_teach / peer (median)",
    )
    # The JSON is the list of rows; the configuration, parameter counts and machine go next to it.
    write_json(args.json, result["rows"])
    if args.json is not None:
        write_json(args.json.with_suffix(".meta.json"), {k: v for k, v in result.items() if k != "rows"})
    return result


if __name__ == "__main__":
    main()
