"""`gssplat bench node`: end-to-end latency (image published -> render received) over real DDS.

For each window size V and model size, an in-process gssplat_node (its own executor thread) is fed
a generated scene at `--rate` Hz, every frame a keyframe (the camera keeps moving), and a peer node
records when each render arrives. Latency is per rendered frame: receive time minus the publish
time of the frame with the same stamp. Output rate is renders per second of feeding.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

from gssplat_ros.data import load_scene
from gssplat_ros.data.procedural import GenerateConfig, generate_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--sizes", nargs="+", default=["160x120", "320x240"], help="model sizes WxH")
    parser.add_argument("--rate", type=float, default=10.0, help="input rate, Hz")
    parser.add_argument("--seconds", type=float, default=15.0, help="feeding time per configuration")
    parser.add_argument("--checkpoint", default="", help="default: the shipped sensor-depth weights; a given "
                        "checkpoint runs in its own depth mode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rgb-only", action="store_true",
                        help="subscribe to ~/render/image only: the node skips its semantic pass")
    parser.add_argument("--runtime", default="torch", choices=["torch", "onnxruntime", "tensorrt", "auto"],
                        help="encoder runtime (node parameter `runtime`)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "int8"],
                        help="exported encoder precision (node parameter `precision`)")


def _frames(size: tuple[int, int], count: int):
    frames = []
    with tempfile.TemporaryDirectory(prefix="gssplat_bench_node_") as tmp:  # the scene is read into memory
        out = Path(tmp)
        generate_dataset(GenerateConfig(out=str(out), scenes=1, frames=count, width=size[0], height=size[1], seed=11))
        scene = load_scene(next(p for p in out.iterdir() if p.name.startswith("scene")), "scannet", size=size)
        for i in range(len(scene)):
            f = scene.frame(i)
            frames.append(((f.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8),
                           f.K.numpy().astype(np.float64), f.world_from_cam.numpy().astype(np.float64),
                           f.depth.numpy()))
    return frames


def bench_config(views: int, size: tuple[int, int], args) -> dict:
    import rclpy
    from geometry_msgs.msg import PoseStamped
    from rclpy.context import Context
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    # lazy: gssplat_ros.ros pulls rclpy and the ROS messages, which only this ROS step needs
    from gssplat_ros.ros import conversions as conv
    from gssplat_ros.ros.node import GssplatNode, activate_at_start
    from gssplat_ros.ros.spin import BackgroundSpinner

    frames = _frames(size, 40)
    ns = "/bench" + uuid.uuid4().hex[:6]
    ctx = Context()
    rclpy.init(context=ctx)
    # a given checkpoint runs in its own depth mode ("auto"; an estimated-depth checkpoint ignores the depth topic)
    depth_mode = "auto" if args.checkpoint else "sensor"
    params = {"checkpoint": args.checkpoint, "device": args.device, "depth_mode": depth_mode, "runtime": args.runtime,
              "precision": getattr(args, "precision", "auto"), "window_size": views,
              "model_width": size[0], "model_height": size[1], "qos_profile": "reliable",
              "keyframe_translation_m": 0.0, "keyframe_rotation_deg": 0.0}
    node = GssplatNode(context=ctx, namespace=ns, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])
    activate_at_start(node)
    peer = rclpy.create_node("bench_peer", namespace=ns, context=ctx)
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    published: dict[int, float] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def on_render(msg):
        now = time.monotonic()
        with lock:
            t = published.get(conv.stamp_to_ns(msg.header.stamp))
            if t is not None:
                latencies.append(now - t)

    peer.create_subscription(Image, f"{ns}/gssplat/render/image", on_render, qos)
    if not args.rgb_only:  # a semantic subscriber makes the node render the semantic pass (the full product)
        peer.create_subscription(Image, f"{ns}/gssplat/render/semantic", lambda _m: None, qos)
    pub_img = peer.create_publisher(Image, f"{ns}/image", qos)
    pub_info = peer.create_publisher(CameraInfo, f"{ns}/camera_info", qos)
    pub_pose = peer.create_publisher(PoseStamped, f"{ns}/pose", qos)
    pub_depth = peer.create_publisher(Image, f"{ns}/depth", qos)
    spinner = BackgroundSpinner(ctx, node, peer)
    while pub_img.get_subscription_count() == 0 or (not args.rgb_only and node.pub_semantic.get_subscription_count() == 0):
        time.sleep(0.05)

    def publish(i: int) -> None:
        rgb, K, pose, depth = frames[i % len(frames)]
        stamp = 10**9 + i * int(1e9 / args.rate)
        h = Header(stamp=conv.ns_to_stamp(stamp), frame_id="camera")
        pub_info.publish(conv.camera_info_msg(K, size[0], size[1], h))
        if i == 0:
            time.sleep(0.2)
        with lock:
            published[stamp] = time.monotonic()
        pub_img.publish(conv.numpy_to_image(rgb, h, "rgb8"))
        pub_depth.publish(conv.numpy_to_image(depth, h, "32FC1"))
        p = conv.pose_to_msg(pose, stamp, "map")
        p.header = h
        pub_pose.publish(p)

    # warm-up: first window, first inference (not measured)
    for i in range(views + 1):
        publish(i)
        time.sleep(1.0 / args.rate)
    deadline = time.monotonic() + 60
    while not latencies and time.monotonic() < deadline:
        time.sleep(0.05)
    with lock:
        latencies.clear()
    t0, i = time.monotonic(), views + 1
    while time.monotonic() - t0 < args.seconds:
        publish(i)
        i += 1
        time.sleep(max(0.0, t0 + (i - views - 1) / args.rate - time.monotonic()))
    time.sleep(2.0)
    stats = node.stats()
    spinner.stop()
    node.shutdown()
    node.destroy_node()
    peer.destroy_node()
    rclpy.try_shutdown(context=ctx)
    lat = sorted(latencies)
    return {
        "views": views, "size": f"{size[0]}x{size[1]}", "renders": len(lat),
        "p50_ms": statistics.median(lat) * 1e3 if lat else float("nan"),
        "p95_ms": float(np.percentile(lat, 95)) * 1e3 if lat else float("nan"),
        "rate_hz": len(lat) / args.seconds,
        "predict_p50_ms": stats["latency_ms"].get("predict", {}).get("p50", float("nan")),
        "render_p50_ms": stats["latency_ms"].get("render", {}).get("p50", float("nan")),
    }


def run(args: argparse.Namespace) -> int:
    import torch

    precision = getattr(args, "precision", "auto")
    runtime = args.runtime if precision == "auto" else f"{args.runtime} {precision}"
    print(f"gssplat_node end to end, {runtime} on {args.device} ({torch.get_num_threads()} threads), "
          f"{'RGB only (semantic pass skipped)' if args.rgb_only else 'RGB + semantic subscribed'}, "
          f"input {args.rate:g} Hz, "
          f"{args.seconds:g} s per row, every frame a keyframe")
    print("| V | model size | renders | latency p50 ms | latency p95 ms | output Hz | predict p50 ms | render p50 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for size_text in args.sizes:
        size = tuple(int(v) for v in size_text.split("x"))
        for v in args.views:
            r = bench_config(v, size, args)
            print(f"| {v} | {r['size']} | {r['renders']} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['rate_hz']:.2f} | "
                  f"{r['predict_p50_ms']:.0f} | {r['render_p50_ms']:.0f} |", flush=True)
    return 0
