"""``cnf-teach toy``: fit the conditional 2D flow to the conditional mixture and report nats.

A seconds-long demonstration that the library works end to end on a fresh
machine: it trains :class:`~cnf_teach.toy.VectorFlow` on
:class:`~cnf_teach.data.ConditionalMixture2D` and compares its test log-likelihood
with the true one.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from ..data.toy import ConditionalMixture2D
from ..progress import track
from ..toy.vector_flow import VectorFlow
from .common import int_arg, output_file, seed_arg, write_text

__all__ = ["register", "run"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("toy", help="fit a conditional flow to the 2D conditional mixture")
    p.add_argument("--steps", type=int_arg(1, 10**7), default=500, help="optimisation steps (default 500)")
    p.add_argument("--batch-size", type=int_arg(1, 10**6), default=256)
    p.add_argument("--seed", type=seed_arg, default=0)
    p.add_argument("--json", metavar="OUT", help="write the figures as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing --json file")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    json_path = output_file(args.json, "--json", args.force)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    target = ConditionalMixture2D()
    model = VectorFlow(dim=2, cond_dim=1, num_layers=6, hidden=64)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in track(range(args.steps), desc="toy", leave=False):
        x = target.sample_x(args.batch_size, g)
        loss = -model.log_prob(target.sample(x, g), x).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = target.sample_x(4096, g)
    y = target.sample(x, g)
    with torch.no_grad():
        model_nll = -model.log_prob(y, x).mean().item()
    true_nll = -target.log_prob(y, x).mean().item()
    print(f"test NLL (nats): model {model_nll:.3f}  true density {true_nll:.3f}")
    if json_path is not None:
        write_text(json_path, json.dumps({"model_nll": model_nll, "true_nll": true_nll, "steps": args.steps}, indent=2))
    return 0
