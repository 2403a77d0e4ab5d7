"""``python -m cnf_teach.pretrained [NAME ...|all]``: train shipped models from their recipes (``make pretrained``)."""

from __future__ import annotations

import argparse
import logging
import sys

from .recipes import RECIPES, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnf_teach.pretrained", description=__doc__)
    parser.add_argument(
        "names", nargs="*", default=["all"], help=f"recipes to run: all, or any of {', '.join(RECIPES)}"
    )
    parser.add_argument("--out", help="folder for NAME.pt and NAME.json (default: the package's weights folder)")
    parser.add_argument("--work-dir", default="runs/pretrained", help="resumable checkpoints (default runs/pretrained)")
    parser.add_argument("--data-root", help="folder holding T91/ for the SR recipes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    names = list(RECIPES) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        print(f"error: unknown recipe(s) {', '.join(unknown)}; choose from all, {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    for name in names:
        meta = train(name, args.out, args.work_dir, args.data_root, progress=not args.no_progress)
        logging.info(
            "%s: %d steps, %.0f CPU-s; metrics %s", name, meta["steps"], meta["cpu_seconds"], meta["metrics"]["mean"]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
