"""`gssplat save-map [--node /gssplat]`: ask a running gssplat_node to save its fused map, and say where.

Calls the node's `~/save_map` service (std_srvs/Trigger). The node writes `map_file_name` (default map.ply)
inside its `map_save_dir`, which must be set (fuse_map: true as well); see gssplat_ros/ros/map_saver.py for
which files it will and will not overwrite. Exit 0 when the map was written, 1 with the node's reason if not.
"""

from __future__ import annotations

import argparse
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", default="/gssplat", help="fully qualified node name (default /gssplat)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node and the save")


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from std_srvs.srv import Trigger

    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("gssplat_save_map", context=ctx)
    service = f"{args.node.rstrip('/')}/save_map"
    try:
        client = node.create_client(Trigger, service)
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f"gssplat save-map: no service {service} (is gssplat_node running?)", file=sys.stderr)
            return 1
        future = client.call_async(Trigger.Request())
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        deadline = time.monotonic() + args.timeout
        while not future.done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        if not future.done():
            print(f"gssplat save-map: {service} did not answer within {args.timeout:g} s", file=sys.stderr)
            return 1
        response = future.result()
        print(response.message, file=sys.stdout if response.success else sys.stderr)
        return 0 if response.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
