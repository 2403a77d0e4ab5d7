"""``cnf-teach sr eval``: bits/dim, PSNR and SSIM per image set, a table like Table 2 of Winkler et al. 2019.

The protocol is the paper's by default (§5.1, §5.1.1): bits/dim averaged over ``--crops 1000``
seeded random ``--crop-size 128`` crops (``--protocol crops``), and the LR input padded with
zeros at the right and bottom to a square, the output cropped to the exact shape for PSNR/SSIM
(``--padding square``); ``--protocol whole`` and ``--padding replicate`` are the project's
variants (see "Readings and deviations"). ``--model bicubic`` gives the bicubic row.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from .common import output_file, pick_device, usage_error, write_text
from .sr_inputs import model_from_args, read_eval_set

__all__ = ["BICUBIC_SCALES", "format_table", "run_eval"]

log = logging.getLogger(__name__)

#: Scales the bicubic row can be computed at (the benchmark sets' usual factors).
BICUBIC_SCALES = (2, 3, 4)


def _fmt(v: float | None, digits: int) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def format_table(results: dict[str, dict[str, Any]], method: str, protocol: str = "") -> str:
    """A text table in the layout of Table 2 of the paper: one row per set.

    Args:
        results: Per set: ``images``, ``bpd``, ``psnr_y``, ``ssim_y``, ``psnr_rgb``, ``ssim_rgb``.
        method: The row's method, printed above the table.
        protocol: A line saying how bits/dim and PSNR/SSIM were measured (omitted when empty).
    """
    head = f"{'set':<12} {'images':>6} {'bpd':>7} {'PSNR-Y':>8} {'SSIM-Y':>7} {'PSNR-RGB':>9} {'SSIM-RGB':>9}"
    lines = [f"method: {method}", *([protocol] if protocol else []), head, "-" * len(head)]
    for name, r in results.items():
        lines.append(
            f"{name:<12} {r['images']:>6} {_fmt(r['bpd'], 3):>7} {_fmt(r['psnr_y'], 2):>8} "
            f"{_fmt(r['ssim_y'], 4):>7} {_fmt(r['psnr_rgb'], 2):>9} {_fmt(r['ssim_rgb'], 4):>9}"
        )
    return "\n".join(lines)


class _Subset(torch.utils.data.Dataset):
    def __init__(self, data: Any, n: int) -> None:
        self.data, self.n = data, min(n, len(data))
        self.gray = list(getattr(data, "gray", [False] * len(data)))[: self.n]
        self.names = list(getattr(data, "names", [f"image_{i}" for i in range(len(data))]))[: self.n]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.data[i]


def run_eval(args: argparse.Namespace) -> int:
    from ..data.natural import natural_sr_dataset
    from ..errors import UsageError
    from ..super_resolution.evaluation import dataset_bits_per_dim, evaluate_sr, make_upsample_fn
    from ..super_resolution.model import SuperResolutionCNF

    json_path = output_file(args.json, "--json", args.force)
    device = pick_device(args.device)
    model = None
    if args.model == "bicubic":
        if args.checkpoint or args.pretrained:
            raise UsageError("--model bicubic takes no --checkpoint or --pretrained")
        if args.scale not in BICUBIC_SCALES:
            raise UsageError(f"unsupported scale {args.scale}; use one of {', '.join(map(str, BICUBIC_SCALES))}")
        method, upsample_fn = "bicubic", None
    else:
        if not args.checkpoint and not args.pretrained:
            raise UsageError("pass --checkpoint CKPT or --pretrained NAME (or --model bicubic for the bicubic row)")
        model = model_from_args(args, device)
        if args.scale != model.config.scale:
            raise UsageError(
                f"unsupported scale {args.scale}: this model was trained for {model.config.scale}x; "
                f"pass --scale {model.config.scale}"
            )
        cnf = isinstance(model, SuperResolutionCNF)
        temperature = args.temperature if cnf else 0.0
        method = f"CNF (tau={temperature:g})" if cnf else "baseline (mode)"
        upsample_fn = make_upsample_fn(model, temperature, padding=args.padding)
    sets: dict[str, Any] = {}
    if not args.data:
        try:
            sets["natural"] = natural_sr_dataset("test", scale=args.scale)
        except ValueError as err:
            raise usage_error(err) from None
    for folder in args.data or []:
        name = Path(folder).name or str(folder)
        sets[name if name not in sets else str(folder)] = read_eval_set(folder, args.scale)
    results: dict[str, dict[str, Any]] = {}
    for name, data in sets.items():
        if args.max_images is not None:
            data = _Subset(data, args.max_images)
        torch.manual_seed(args.seed)
        protocol = args.protocol
        if (
            model is not None
            and protocol == "crops"
            and any(min(data[i][1].shape[-2:]) < args.crop_size for i in range(len(data)))
        ):
            protocol = "whole"  # as dataset_bits_per_dim does: some image is smaller than a crop
            log.info("%s: some images are smaller than %d pixels; bits/dim over whole images", name, args.crop_size)
        try:
            r = evaluate_sr(data, scale=args.scale, upsample_fn=upsample_fn, progress=False)
            bpd = None
            if model is not None:
                bpd = dataset_bits_per_dim(
                    model, data, protocol=protocol, crops=args.crops, crop_size=args.crop_size, seed=args.seed
                )
        except ValueError as err:
            raise usage_error(err) from None
        results[name] = {
            "bpd_protocol": protocol if model is not None else None,
            "psnr_y": r["psnr_y"],
            "ssim_y": r["ssim_y"],
            "psnr_rgb": r["psnr_rgb"],
            "ssim_rgb": r["ssim_rgb"],
            "bpd": bpd,
            "images": int(r["images"]),
        }
    line = ""  # how bits/dim and the padding were chosen (the bicubic row has neither)
    if model is not None:
        crops = f"{args.crops} random {args.crop_size}x{args.crop_size} crops (seed {args.seed})"
        line = f"bits/dim: {'mean over ' + crops if args.protocol == 'crops' else 'whole images'}; "
        line += f"padding for PSNR/SSIM: {args.padding}"
        if any(r["bpd_protocol"] != args.protocol for r in results.values()):
            line += f" (sets with images under {args.crop_size} pixels: whole images)"
    print(format_table(results, method, line))
    if json_path is not None:
        write_text(json_path, json.dumps(results, indent=2))
    return 0
