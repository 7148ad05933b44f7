"""`gssplat save-map OUT.ply [--node /gssplat]`: ask a running gssplat_node (fuse_map: true) to save its map.

Publishes the path on the node's `~/save_map` topic (std_msgs/String) and waits until the node hears it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="PLY path, as seen by the node's machine")
    parser.add_argument("--node", default="/gssplat", help="fully qualified node name (default /gssplat)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node")


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("gssplat_save_map", context=ctx)
    try:
        pub = node.create_publisher(String, f"{args.node.rstrip('/')}/save_map",
                                    QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        deadline = time.monotonic() + args.timeout
        while pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no gssplat node listens on {args.node}/save_map (is it running with fuse_map?)")
            time.sleep(0.1)
        pub.publish(String(data=str(args.out.resolve())))
        time.sleep(0.5)  # let the reliable sample reach the node before we leave the graph
        print(f"asked {args.node} to save its map to {args.out.resolve()}")
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return 0
