"""`gssplat eval --data DIR --format scannet|replica --views V [--depth sensor|estimated] --json OUT.json [--images DIR]
[--min-baseline-m M] [--min-baseline-deg DEG] [--context-rerender]`."""

from __future__ import annotations

import argparse


def add_query_arguments(parser: argparse.ArgumentParser, splits: tuple[str, ...], default_split: str,
                        data_help: str = "folder of scenes") -> None:
    """The options that pick the model and the protocol's queries (shared with maint/calibrate_cmd.py)."""
    parser.add_argument("--checkpoint", default="", help="checkpoint stem or .safetensors (default: shipped weights)")
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--format", choices=["scannet", "replica"], default="scannet")
    parser.add_argument("--split", choices=list(splits), default=default_split)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--size", default="320x240", help="WxH")
    parser.add_argument("--depth", choices=["sensor", "estimated"], default="sensor")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", choices=["auto", "cpu", "gsplat"], default="auto", help="renderer")
    parser.add_argument("--max-targets", type=int, default=10, help="targets per scene (frames 2::20)")
    parser.add_argument("--semantic-scales", default="auto", metavar="auto|'S S ...'",
                        help="average the class logits over these image scales, e.g. '1 0.5'; auto: the "
                             "checkpoint's reference width decides (docs/training.md, 'Ship')")


def parse_size(text: str) -> tuple[int, int]:
    """(width, height) from "WxH"; ValueError (one line) otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 320x240, got {text!r}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_query_arguments(parser, ("auto", "train", "val", "test", "all"), "auto",
                        "folder of scenes (--split auto: its test split where splits/*.txt or Replica's paper "
                        "scenes name one, else every scene)")
    parser.add_argument("--runtime", choices=["torch", "onnxruntime", "tensorrt", "auto"], default="torch")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "int8"], default="auto",
                        help="of the exported graph: auto (the runtime's default: fp32, TensorRT fp16), fp32, fp16 "
                             "(onnxruntime, tensorrt), int8 (onnxruntime on the CPU)")  # fmt: skip
    parser.add_argument("--context-stride", type=int, default=1,
                        help="1: the V nearest frames (default); 5: GSNeRF's every-5th-frame candidates")
    parser.add_argument("--rgb-mask", choices=["valid-depth", "all"], default="valid-depth")
    parser.add_argument("--ablate-offsets", action="store_true", help="inference-time: close every offset gate")
    parser.add_argument("--ablate-aggregation", action="store_true", help="inference-time: skip voxel aggregation")
    parser.add_argument("--ablate-geometry", action="store_true",
                        help="inference-time: no world-geometry cues into the semantic branch")
    parser.add_argument("--world-shift-z", type=float, default=0.0, metavar="M",
                        help="robustness probe: every pose M metres higher (floor at z = M instead of 0)")
    parser.add_argument("--min-baseline-m", type=float, default=0.0, metavar="M",
                        help="frames nearer the query than M metres (and than --min-baseline-deg, if given) are "
                             "never its context: near-duplicate frames of a real capture")
    parser.add_argument("--min-baseline-deg", type=float, default=0.0, metavar="DEG",
                        help="frames turned less than DEG degrees from the query (and nearer than "
                             "--min-baseline-m, if given) are never its context")
    parser.add_argument("--context-rerender", action="store_true",
                        help="also render the colour Gaussians back into their own context views (PSNR: how much "
                             "of the observation they keep)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--images", help="write side-by-side PNGs here")


def run(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.evaluate import EvalConfig, evaluate, format_table, write_json

    width, height = parse_size(args.size)
    cfg = EvalConfig(data=args.data, format=args.format, split=args.split, views=args.views, width=width,
                     height=height, depth=args.depth, checkpoint=args.checkpoint, runtime=args.runtime,
                     precision=args.precision,
                     device=args.device, render_backend=args.backend, context_stride=args.context_stride,
                     rgb_mask=args.rgb_mask, max_targets=args.max_targets, images=args.images or "",
                     ablate_offsets=args.ablate_offsets, ablate_aggregation=args.ablate_aggregation,
                     ablate_geometry=args.ablate_geometry, world_shift_z=args.world_shift_z,
                     semantic_scales=args.semantic_scales, min_baseline_m=args.min_baseline_m,
                     min_baseline_deg=args.min_baseline_deg, context_rerender=args.context_rerender)
    if cfg.min_baseline_m < 0 or cfg.min_baseline_deg < 0:
        raise ValueError("--min-baseline-m and --min-baseline-deg must be >= 0")
    result = evaluate(cfg)
    print(format_table(result))
    write_json(result, args.json)
    return 0
