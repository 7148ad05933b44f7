"""`gssplat calibrate --data DIR --split val --out STEM [--checkpoint CKPT] [--views V] [--size WxH]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gssplat_ros.commands.eval_cmd import add_query_arguments

    add_query_arguments(parser, ("train", "val", "all"), "val", "folder of labelled scenes (never the test split)")
    parser.add_argument("--out", required=True, help="stem of the calibrated checkpoint (.safetensors + .json)")
    parser.add_argument("--json", help="write the fitted offsets and scores here")


def run(args: argparse.Namespace) -> int:
    from gssplat_ros.calibrate import calibrate_checkpoint
    from gssplat_ros.commands.eval_cmd import parse_size
    from gssplat_ros.evaluate import EvalConfig

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
