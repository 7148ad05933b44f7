"""`python -m maint.calibrate_cmd --data DIR --split val --out STEM [--checkpoint CKPT] [--views V] [--size WxH]`.

Not a `gssplat` subcommand: on generated rooms the fitted offsets did not carry over to views they were not
fitted on, so the tool stays here for a deployment whose class mix differs from the training scenes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gssplat_ros.commands.eval_cmd import add_query_arguments

    add_query_arguments(parser, ("train", "val", "all"), "val", "folder of labelled scenes (never the test split)")
    parser.add_argument("--out", required=True, help="stem of the calibrated checkpoint (.safetensors + .json)")
    parser.add_argument("--json", help="write the fitted offsets and scores here")


def run(args: argparse.Namespace) -> int:
    from gssplat_ros.commands.eval_cmd import parse_size
    from gssplat_ros.evaluate import EvalConfig
    from maint.calibrate import calibrate_checkpoint

    width, height = parse_size(args.size)
    if args.json and Path(args.json).resolve() == Path(args.out).with_suffix(".json").resolve():
        raise ValueError(f"--json {args.json} would overwrite the checkpoint's own metadata file; pick another name")
    cfg = EvalConfig(data=args.data, format=args.format, split=args.split, views=args.views, width=width,
                     height=height, depth=args.depth, checkpoint=args.checkpoint, device=args.device,
                     render_backend=args.backend, max_targets=args.max_targets,
                     semantic_scales=args.semantic_scales)  # fmt: skip
    summary = calibrate_checkpoint(cfg, args.out)
    print(f"calibrated {summary['source']} on {summary['views']} views of {args.data} ({args.split}): "
          f"mIoU {summary['miou_before']:.4f} -> {summary['miou_after']:.4f} (in-sample)")
    print("class offsets: " + ", ".join(f"{k} {v:+.2f}" for k, v in summary["bias"].items() if v))
    print(f"wrote {args.out}.safetensors / .json")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m maint.calibrate_cmd", description="fit per-class logit offsets")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except Exception as exc:  # one clear line, as the gssplat CLI does
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
