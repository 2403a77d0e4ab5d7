"""``cnf-teach seg eval`` and ``seg sample``: a vessel model on a test split, and samples of one image.

``seg eval`` reports bits/dim per image pixel, per field-of-view pixel and per padded pixel
(labelled), the max F-score, the second grader's point, and figures like the paper's Figures 4
and 5, on whole images (downscaled as in training, or by ``--downscale``); ``seg sample`` draws
a soft map and samples for a test image, or for scikit-image's real fundus photograph.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

from .common import IMAGE_SUFFIXES, output_file, output_folder, pick_device, usage_error, write_file, write_text
from .seg_inputs import checked_downscale, model_from_args, read_dataset

__all__ = ["run_eval", "run_sample"]


def run_eval(args: argparse.Namespace) -> int:
    from ..vessels.evaluation import evaluate_seg_model
    from ..vessels.figures import plot_pr_curves, plot_segmentations

    json_path = output_file(args.json, "--json", args.force)
    figures = output_folder(args.figures, "--figures", ("pr_curves.png", "segmentations.png"), args.force)
    device = pick_device(args.device)
    model, kind, trained_downscale = model_from_args(args, device)
    config = model.config
    samples = args.samples if args.samples is not None else config.eval_samples
    downscale = checked_downscale(args.downscale, trained_downscale)
    dataset = read_dataset(args.data, args.split, pad_to=config.pad_to, downscale=downscale)  # whole images
    if not any(((im.label > 0) & (im.mask > 0)).any() for im in dataset.images):
        raise usage_error(
            f"the {args.split} labels of {args.data} hold no positive (vessel) pixel inside the field of view; "
            "precision, recall and max F need manual segmentations with vessels"
        )
    ev = evaluate_seg_model(model, dataset, num_samples=samples, bound_samples=args.bound_samples, device=device)
    h, w = dataset.images[0].image.shape[:2]
    summary = {
        "model": kind,
        "split": args.split,
        "samples": samples,
        "bound_samples": args.bound_samples,
        "downscale": downscale,
        "image_size": [h, w],
        "padded_size": list(dataset.size),
        **ev.summary(),
    }
    line = f"{kind} on {args.split} ({len(dataset)} images, {h}x{w}, downscale {downscale:g}): "
    line += f"max F {ev.max_f:.4f} (threshold {ev.threshold:.2f})"
    if ev.human is not None:
        line += f", second grader F {summary['human_f']:.4f}"
    print(line)
    bound = "" if kind == "baseline" else f" (bound, {args.bound_samples} dequantization sample(s))"
    print(
        f"  bits/dim{bound} {ev.bpd:.4f} per image pixel ({h}x{w}), {ev.bpd_fov:.4f} per field-of-view pixel, "
        f"{ev.bpd_padded:.4f} per padded pixel ({dataset.size[0]}x{dataset.size[1]})"
    )
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        write_file(figures / "pr_curves.png", lambda tmp: plot_pr_curves({kind: ev}, tmp))
        rows = []
        for i, (soft, sample) in enumerate(zip(ev.soft_maps, ev.first_samples, strict=True)):
            im = dataset.images[i]
            rows.append({"photograph": im.image, "ground truth": im.label, "soft map": soft, "sample": sample})
        write_file(figures / "segmentations.png", lambda tmp: plot_segmentations(rows, tmp))
    if json_path is not None:
        write_text(json_path, json.dumps(summary, indent=2))
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from ..data.drive import crop_back
    from ..vessels.evaluation import real_retina
    from ..vessels.figures import plot_segmentations

    out_path = output_file(args.out, "--out", args.force, IMAGE_SUFFIXES)
    device = pick_device(args.device)
    model, _, trained_downscale = model_from_args(args, device)
    torch.manual_seed(args.seed)
    if args.retina:
        if args.size < 16 or args.size % 4:
            raise usage_error(f"--size must be a multiple of 4 and at least 16, got {args.size}")
        x, fov = real_retina(args.size)
        photo = x[0].permute(1, 2, 0).numpy()
        row: dict[str, Any] = {"photograph": photo}
        box = (0, 0, args.size, args.size)
    else:
        downscale = checked_downscale(args.downscale, trained_downscale)
        dataset = read_dataset(args.data, "test", pad_to=model.config.pad_to, downscale=downscale)
        if not 0 <= args.index < len(dataset):
            raise usage_error(f"--index must be in 0..{len(dataset) - 1}, got {args.index}")
        item = dataset[args.index]
        x, box = item["x"][None], tuple(int(v) for v in item["box"])
        row = {"photograph": dataset.images[args.index].image, "ground truth": dataset.images[args.index].label}
    x = x.to(device)
    with torch.no_grad():
        draws = [crop_back(s[0, 0].cpu(), box).numpy() for s in model.samples(x, args.samples, args.temperature)]
    row["soft map"] = sum(draws) / len(draws)
    row["sample 1"] = draws[0]
    if len(draws) > 1:
        row["sample 2"] = draws[1]
    assert out_path is not None
    write_file(out_path, lambda tmp: plot_segmentations([row], tmp))
    print(f"wrote {args.out}")
    return 0
