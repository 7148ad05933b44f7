"""`gssplat bag write-scene | play | info | recover`: rosbag2 tools without `ros2 bag`.

Usage:
    gssplat bag write-scene scenes/scene_0000 scene_bag --rate 10 [--format sqlite3] [--depth-encoding 16UC1]
    gssplat bag play scene_bag --rate 2 --loop --clock [--topics /camera/image_raw /camera/pose] [--qos sensor_data]
    gssplat bag info scene_bag                  # topics, counts, duration; every MCAP CRC checked
    gssplat bag recover cut_bag fixed_bag       # a truncated / corrupted MCAP bag -> a new valid bag
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 320x240, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="BAG_COMMAND")
    sub.required = True
    w = sub.add_parser("write-scene", help="write a ScanNet-layout scene to a rosbag2 bag",
                       description="Write SCENE/{color,depth,pose,intrinsic} to a rosbag2 bag (version 8: Humble and "
                                   "Jazzy read it): /camera/image_raw, /camera/camera_info, /camera/depth, "
                                   "/camera/pose, /tf.")
    w.add_argument("scene", type=Path, help="scene directory (ScanNet layout)")
    w.add_argument("out", type=Path, help="output bag directory (must not exist)")
    w.add_argument("--format", choices=["mcap", "sqlite3"], default="mcap", help="storage (default mcap)")
    w.add_argument("--scene-format", choices=["auto", "scannet", "replica"], default="auto",
                   help="scene layout (default auto: color/ = scannet, rgb/ = replica)")
    w.add_argument("--rate", type=float, default=10.0, help="frame rate of the stamps, Hz (default 10)")
    w.add_argument("--frame-id", default="camera_optical", help="camera optical frame id")
    w.add_argument("--world-frame", default="map", help="world frame id of poses and /tf")
    w.add_argument("--depth-encoding", choices=["32FC1", "16UC1"], default="32FC1",
                   help="32FC1 metres (default) or 16UC1 millimetres; 0 = invalid")
    w.add_argument("--size", type=_size, help="resize images to WxH (intrinsics scaled); default: as stored")
    w.add_argument("--start", type=float, default=1000.0, help="stamp of the first frame, seconds (default 1000)")
    w.add_argument("--no-depth", action="store_true", help="write no depth topic")
    w.add_argument("--no-tf", action="store_true", help="write no /tf topic")
    w.set_defaults(_bag_run=_write_scene)

    p = sub.add_parser("play", help="publish a bag over DDS (rclpy)",
                       description="Publish a rosbag2 bag with its recorded timing, where `ros2 bag play` is missing.")
    p.add_argument("bag", type=Path, help="bag directory, .mcap or .db3 file")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1.0)")
    p.add_argument("--loop", action="store_true", help="restart at the end (stamps jump back)")
    p.add_argument("--clock", action="store_true", help="publish /clock (rosgraph_msgs/Clock) with the bag time")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics")
    p.add_argument("--qos", choices=["reliable", "sensor_data"], default="reliable",
                   help="publisher QoS (default reliable: heard by reliable and best-effort subscribers)")
    p.add_argument("--delay", type=float, default=0.5, help="seconds to wait for discovery before the first message")
    p.add_argument("--prefix", default="", help="namespace prepended to every topic")
    p.set_defaults(_bag_run=_play)

    i = sub.add_parser("info", help="topics, message counts and integrity of a bag",
                       description="List a bag's topics and counts; check every CRC its MCAP files carry and "
                                   "that they are complete (exit 1 when damaged).")
    i.add_argument("bag", type=Path, help="bag directory, .mcap or .db3 file")
    i.set_defaults(_bag_run=_info)

    r = sub.add_parser("recover", help="salvage a truncated or corrupted MCAP bag into a new bag",
                       description="Copy every readable message of an MCAP bag (a recorder killed mid-run, a "
                                   "corrupted chunk) into a new rosbag2 bag with CRCs and a metadata.yaml. "
                                   "Chunks failing their CRC are skipped; a truncated file is read up to the cut.")
    r.add_argument("bag", type=Path, help="damaged bag directory or .mcap file")
    r.add_argument("out", type=Path, help="output bag directory (must not exist)")
    r.set_defaults(_bag_run=_recover)


def _write_scene(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.bags.scene_bag import SceneBagConfig, write_scene_bag

    cfg = SceneBagConfig(
        storage=args.format,
        rate_hz=args.rate,
        frame_id=args.frame_id,
        world_frame=args.world_frame,
        depth_encoding=args.depth_encoding,
        size=args.size,
        start_s=args.start,
        with_depth=not args.no_depth,
        with_tf=not args.no_tf,
        scene_format=args.scene_format,
    )
    stats = write_scene_bag(args.scene, args.out, cfg)
    topics = ", ".join(f"{t} x{n}" for t, n in stats.counts.items())
    skipped = f", skipped {len(stats.skipped)}" if stats.skipped else ""
    print(f"wrote {stats.frames} frames{skipped} to {args.out} ({args.format}): {topics}")
    return 0


def _play(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.ros.bag import PlayConfig, play_bag

    cfg = PlayConfig(rate=args.rate, loop=args.loop, clock=args.clock, topics=args.topics, qos=args.qos,
                     delay_s=args.delay, prefix=args.prefix)
    # Ctrl-C / SIGTERM set an event the playback loop polls, so no KeyboardInterrupt can land inside a
    # DDS call and leave the shutdown waiting on it.
    stop = threading.Event()
    caught: list[int] = []

    def on_signal(signum, _frame):
        caught.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = play_bag(args.bag, cfg, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    stats.interrupted = stats.interrupted or bool(caught)
    total = sum(stats.published.values())
    print(f"published {total} messages on {len(stats.published)} topics"
          + (f" in {stats.passes} passes" if args.loop else "")
          + (" (interrupted)" if stats.interrupted else ""), file=sys.stderr if stats.interrupted else sys.stdout)
    return 130 if stats.interrupted else 0


def _info(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.bags.frames import open_bag
    from gssplat_ros.bags.mcap_check import bag_mcap_files, damage_hint, scan_mcap

    for file in bag_mcap_files(args.bag):
        print(scan_mcap(file).describe())
    hint = damage_hint(args.bag) if args.bag.exists() else None
    if hint:
        print(f"gssplat bag info: error: {hint}", file=sys.stderr)
        return 1
    with open_bag(args.bag, verify=False) as reader:
        duration_s = (reader.end_time - reader.start_time) / 1e9 if reader.message_count else 0.0
        print(f"{args.bag}: {reader.message_count} messages, {duration_s:.2f} s")
        for conn in sorted(reader.connections, key=lambda c: c.topic):
            print(f"  {conn.topic}  {conn.msgtype}  x{conn.msgcount}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    # lazy: CLI subcommands load on use, so `gssplat --help` stays fast
    from gssplat_ros.bags.recover import recover_bag

    stats = recover_bag(args.bag, args.out)
    for report in stats.reports:
        print(report.describe(), file=sys.stderr)
    topics = ", ".join(f"{t} x{n}" for t, n in sorted(stats.topics.items()))
    print(f"recovered {stats.messages} messages to {args.out}: {topics}")
    return 0


def run(args: argparse.Namespace) -> int:
    return args._bag_run(args)
