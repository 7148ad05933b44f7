"""`gssplat calibrate --data DIR --split val --out STEM [--checkpoint CKPT] [--views V] [--size WxH]`."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default="", help="checkpoint stem or .safetensors (default: shipped weights)")
    parser.add_argument("--data", required=True, help="folder of labelled scenes (never the test split)")
    parser.add_argument("--format", choices=["scannet", "replica"], default="scannet")
    parser.add_argument("--split", choices=["train", "val", "all"], default="val")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", default="320x240", help="WxH")
    parser.add_argument("--depth", choices=["sensor", "estimated"], default="sensor")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto", help="renderer")
    parser.add_argument("--max-targets", type=int, default=10, help="targets per scene (frames 2::20)")
    parser.add_argument("--out", required=True, help="stem of the calibrated checkpoint (.safetensors + .json)")
    parser.add_argument("--json", help="write the fitted offsets and scores here")


def run(args: argparse.Namespace) -> int:
    from gssplat_ros.calibrate import calibrate_checkpoint
    from gssplat_ros.evaluate import EvalConfig

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 320x240, got {args.size!r}") from None
    from pathlib import Path

    if args.json and Path(args.json).resolve() == Path(args.out).with_suffix(".json").resolve():
        raise ValueError(f"--json {args.json} would overwrite the checkpoint's own metadata file; pick another name")
    cfg = EvalConfig(data=args.data, format=args.format, split=args.split, views=args.views, width=width,
                     height=height, depth=args.depth, checkpoint=args.checkpoint, device=args.device,
                     render_backend=args.backend, max_targets=args.max_targets)  # fmt: skip
    summary = calibrate_checkpoint(cfg, args.out)
    print(f"calibrated {summary['source']} on {summary['views']} views of {args.data} ({args.split}): "
          f"mIoU {summary['miou_before']:.4f} -> {summary['miou_after']:.4f} (in-sample)")
    print("class offsets: " + ", ".join(f"{k} {v:+.2f}" for k, v in summary["bias"].items() if v))
    print(f"wrote {args.out}.safetensors / .json")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0
