"""`gssplat data generate|info`: procedural training scenes and dataset summaries.

Usage:
    gssplat data generate --out scenes --scenes 8 --frames 60 --size 320x240 --seed 0 [--jobs 2]
    gssplat data generate --source meshes --appearance full --out meshes8 --scenes 8 --size 160x120
    gssplat data info scenes [--format scannet]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="render synthetic rooms in the ScanNet layout")
    gen.add_argument("--source", choices=["procedural", "meshes"], default="procedural",
                     help="procedural: boxes/cylinders in axis-aligned rooms; meshes: triangle-mesh furniture "
                          "in turned, L-shaped rooms (an independent generator for held-out tests)")
    gen.add_argument("--appearance", choices=["none", "photo", "camera", "full"], default="none",
                     help="none: exact colours and depth; photo: photo textures on half the surfaces, the camera and "
                          "depth exact; camera: random intrinsics and size, auto-exposure, "
                          "white balance, RGB noise/blur/JPEG, depth sensor noise; full: camera + photo textures")
    gen.add_argument("--depth-sensor", choices=["exact", "kinect", "realsense"],
                     help="depth noise model (default: exact for --appearance none, else kinect)")
    gen.add_argument("--out", type=Path, required=True, help="output folder (one sceneNNNN_00 per scene)")
    gen.add_argument("--scenes", type=int, default=1, help="number of scenes")
    gen.add_argument("--frames", type=int, default=60, help="frames per scene")
    gen.add_argument("--size", type=_size, default=(320, 240), help="image size WxH (default 320x240)")
    gen.add_argument("--seed", type=int, default=0, help="dataset seed; scene i depends only on (seed, i)")
    gen.add_argument("--jobs", type=int, default=1, help="parallel scene workers")
    gen.add_argument("--image-format", choices=["png", "jpg"], default="png", help="colour images (png is exact)")
    gen.add_argument("--start-index", type=int, default=0, help="index of the first scene")
    gen.add_argument("--step-m", type=float, default=0.07, help="camera travel per frame, metres")
    gen.add_argument("--room-type", help="force one room type (procedural: bedroom living kitchen office bathroom "
                     "studio; meshes: bedroom living kitchen bathroom office dining; default: every 6 scenes "
                     "cover all types)")
    info = sub.add_parser("info", help="list the scenes, splits and classes of a dataset folder")
    info.add_argument("root", type=Path)
    info.add_argument("--format", choices=["scannet", "replica"], default="scannet")


def run(args: argparse.Namespace) -> int:
    if args.data_command == "generate":
        return _generate(args)
    return _info(args)


def _generate(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    w, h = args.size
    cfg = GenerateConfig(out=str(args.out), scenes=args.scenes, frames=args.frames, width=w, height=h,
                         seed=args.seed, jobs=args.jobs, image_format=args.image_format,
                         start_index=args.start_index, step_m=args.step_m, room_type=args.room_type,
                         source=args.source, appearance=args.appearance, depth_sensor=args.depth_sensor)
    if args.room_type is not None:
        if args.source == "meshes":
            # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
            from gssplat_ros.data.meshes.rooms import ROOM_TYPES
        else:
            # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
            from gssplat_ros.data.procedural.rooms import ROOM_TYPES
        if args.room_type not in ROOM_TYPES:
            print(f"error: --room-type {args.room_type!r} is not a {args.source} room type "
                  f"({', '.join(ROOM_TYPES)})", file=sys.stderr)
            return 2
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.scenes, unit="scene", file=sys.stderr)

    def progress(r: dict) -> None:
        if bar is not None:
            bar.update(1)
        log.info("%s: %d frames in %.1f s", r["scene"], r["frames"], r["total_s"])

    summary = generate_dataset(cfg, progress)
    summary["rooms_per_min"] = 60.0 * summary["scenes"] / max(summary["wall_s"], 1e-9)
    if bar is not None:
        bar.close()
    size = f"{w}x{h}" if args.appearance in ("none", "photo") else f"~{w}x{h} (random per scene)"
    print(f"wrote {summary['scenes']} {args.source} scenes, {summary['frames']} frames at {size} to {args.out} "
          f"in {summary['wall_s']:.1f} s: {summary['frames_per_s']:.1f} frames/s overall "
          f"(ray casting alone {summary['render_frames_per_s']:.1f} frames/s), {summary['rooms_per_min']:.2f} rooms/min")
    print(f"classes ({len(summary['classes'])}): {', '.join(summary['classes'])}")
    return 0


def _info(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.data import list_scenes, split_scenes

    scenes = list_scenes(args.root, args.format)
    print(f"{len(scenes)} scenes under {args.root} ({args.format} layout)")
    for split in ("train", "val", "test"):
        names = split_scenes(args.root, args.format, split)
        print(f"  {split:>5}: {len(names)} {' '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
    for name, path in scenes.items():
        meta_path = path / "scene.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            print(f"  {name}: {meta.get('frames')} frames, {meta.get('room_type')}, "
                  f"{len(meta.get('classes', []))} classes")
    return 0
