"""`gssplat process BAG --out OUT_BAG`: run the pipeline offline over a bag (no DDS), outputs to a new bag.

Usage:
    gssplat process scene_bag --out gssplat_out [--checkpoint CKPT] [--views 4] [--size 160x120]
        [--depth-mode auto|sensor|estimated] [--render-size 320x240] [--slop 0.02]
Outputs: /gssplat/render/{image,semantic,semantic_color,depth,camera_info} and /gssplat/gaussians.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gssplat_ros.commands.bag_cmd import _size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="input bag directory, .mcap or .db3 file")
    parser.add_argument("--out", type=Path, required=True, help="output bag directory (must not exist)")
    parser.add_argument("--checkpoint", default="", help="checkpoint stem; default: shipped weights for the depth mode")
    parser.add_argument("--views", type=int, default=4, help="keyframes in the window, V >= 2 (default 4)")
    parser.add_argument("--size", type=_size, default=(160, 120), help="model input size WxH (default 160x120)")
    parser.add_argument("--render-size", type=_size, help="render size WxH; default: each input image's size")
    parser.add_argument("--depth-mode", choices=["auto", "sensor", "estimated"], default="auto",
                        help="sensor depth, estimated depth, or auto (sensor when the bag has depth)")
    parser.add_argument("--device", default="auto", help="cpu | cuda | auto")
    parser.add_argument("--runtime", default="torch", help="torch | onnxruntime | tensorrt | auto")
    parser.add_argument("--render-backend", default="auto", help="auto | cpu | gsplat")
    parser.add_argument("--slop", type=float, default=0.02, help="max stamp difference image<->pose/depth, s")
    parser.add_argument("--format", choices=["mcap", "sqlite3"], default="mcap", help="output storage")
    parser.add_argument("--image-topic", default="/camera/image_raw")
    parser.add_argument("--camera-info-topic", default="/camera/camera_info")
    parser.add_argument("--pose-topic", default="/camera/pose",
                        help="camera optical frame in world: PoseStamped, PoseWithCovarianceStamped or Odometry")
    parser.add_argument("--depth-topic", default="/camera/depth")
    parser.add_argument("--no-render", action="store_true", help="write only /gssplat/gaussians")
    # The node's frame checks and keyframe thresholds, with the same defaults (PipelineConfig).
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.pipeline import PipelineConfig

    d = PipelineConfig()
    frames = parser.add_argument_group("keyframes and frame checks (as the node's parameters of the same name)")
    frames.add_argument("--keyframe-translation-m", type=float, default=d.keyframe_translation_m,
                        help=f"new keyframe after this much translation (default {d.keyframe_translation_m})")
    frames.add_argument("--keyframe-rotation-deg", type=float, default=d.keyframe_rotation_deg,
                        help=f"new keyframe after this much rotation (default {d.keyframe_rotation_deg})")
    frames.add_argument("--min-valid-depth-fraction", type=float, default=d.min_valid_depth_fraction,
                        help=f"frames with less valid depth are dropped (default {d.min_valid_depth_fraction})")
    frames.add_argument("--min-depth-m", type=float, default=d.min_depth_m,
                        help=f"depth below this is invalid (default {d.min_depth_m})")
    frames.add_argument("--max-depth-m", type=float, default=d.max_depth_m,
                        help=f"depth above this is invalid (default {d.max_depth_m})")
    frames.add_argument("--max-abs-position-m", type=float, default=d.max_abs_position_m,
                        help=f"poses further from the origin are dropped (default {d.max_abs_position_m:g})")


def run(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.bags.frames import FrameTopics, open_bag, resolve_topics
    from gssplat_ros.bags.process import ProcessConfig, process_bag
    from gssplat_ros.errors import DataError
    from gssplat_ros.pipeline import Pipeline, PipelineConfig

    if args.min_depth_m >= args.max_depth_m:
        raise DataError(f"--min-depth-m ({args.min_depth_m}) must be below --max-depth-m ({args.max_depth_m})")
    if args.views < 2:
        raise DataError(f"--views must be >= 2, got {args.views}")
    if args.out.exists():
        raise DataError(f"output bag already exists: {args.out} (remove it or pick another path)")
    topics = FrameTopics(args.image_topic, args.camera_info_topic, args.pose_topic, args.depth_topic)
    reader = open_bag(args.bag)  # check the input before loading the model
    try:
        resolve_topics(reader, topics, depth=args.depth_mode)
    finally:
        reader.close()
    pipe = Pipeline(PipelineConfig(
        checkpoint=args.checkpoint, device=args.device, depth_mode=args.depth_mode, runtime=args.runtime,
        render_backend=args.render_backend, window_size=args.views, model_width=args.size[0],
        model_height=args.size[1], keyframe_translation_m=args.keyframe_translation_m,
        keyframe_rotation_deg=args.keyframe_rotation_deg, min_valid_depth_fraction=args.min_valid_depth_fraction,
        min_depth_m=args.min_depth_m, max_depth_m=args.max_depth_m, max_abs_position_m=args.max_abs_position_m,
    ))
    cfg = ProcessConfig(topics=topics, slop_s=args.slop, render_size=args.render_size, storage=args.format,
                        render=not args.no_render)
    stats = process_bag(args.bag, args.out, pipe, cfg)
    print(f"{args.bag} -> {args.out}: {stats.summary()}")
    for topic, n in sorted(stats.counts.items()):
        print(f"  {topic}: {n}")
    if not stats.predictions:
        print(f"gssplat process: error: no prediction: the window never held 2 keyframes ({stats.summary()}); "
              f"if the camera moves less than --keyframe-translation-m {args.keyframe_translation_m:g} / "
              f"--keyframe-rotation-deg {args.keyframe_rotation_deg:g}, lower them", file=sys.stderr)
        return 1
    return 0
