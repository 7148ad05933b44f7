"""`make demo`: the whole product on the embedded default, over real DDS, in a few minutes.

Usage:
    python -m gssplat_ros.demo --out demo_out [--frames 48] [--size 320x240] [--views 4]

Steps: generate a procedural scene -> hold out a few frames -> write the rest to a rosbag2 bag ->
start `gssplat_node` (shipped weights) as its own process -> play the bag over DDS -> record the
node's outputs -> request renders at the held-out poses through `~/render_pose` -> compare them
with the scene's ground truth (PSNR, mIoU) -> print a summary and write a contact sheet PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from gssplat_ros.data import PALETTE, load_scene
from gssplat_ros.metrics import image_metrics, semantic_metrics

NODE_NAME = "gssplat"
NAMESPACE = "/demo"


def sh(cmd: list[str], **kw) -> None:
    print("$", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def bin_path(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def make_subscene(scene: Path, out: Path, keep: list[int]) -> None:
    """Copy the kept frames of a ScanNet-layout scene into `out`, renumbered 0..len(keep)-1."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("color", "depth", "label-filt", "pose"):
        (out / sub).mkdir(parents=True)
    shutil.copytree(scene / "intrinsic", out / "intrinsic")
    for new, old in enumerate(keep):
        for sub in ("color", "depth", "label-filt", "pose"):
            src = next((scene / sub).glob(f"{old}.*"))
            shutil.copy(src, out / sub / f"{new}{src.suffix}")


class Recorder:
    """Subscribes to the node's outputs in this process (real rclpy) and keeps what arrives."""

    def __init__(self, context):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, PointCloud2

        self.rclpy = rclpy
        self.node = rclpy.create_node("gssplat_demo_recorder", context=context)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        base = f"{NAMESPACE}/{NODE_NAME}"
        self.images, self.semantic, self.depth, self.clouds = [], [], [], []
        self.lock = threading.Lock()
        self.node.create_subscription(Image, f"{base}/render/image", self._keep(self.images), qos)
        self.node.create_subscription(Image, f"{base}/render/semantic", self._keep(self.semantic), qos)
        self.node.create_subscription(Image, f"{base}/render/depth", self._keep(self.depth), qos)
        self.node.create_subscription(PointCloud2, f"{base}/gaussians", self._keep(self.clouds), qos)
        self.pose_pub = self.node.create_publisher(PoseStamped, f"{base}/render_pose", qos)

    def _keep(self, store):
        def cb(msg):
            with self.lock:
                store.append((time.monotonic(), msg))

        return cb


def image_to_numpy(msg) -> np.ndarray:
    # lazy: gssplat_ros.ros pulls rclpy and the ROS messages, which only this ROS step needs
    from gssplat_ros.ros.conversions import image_to_numpy as conv

    return conv(msg)


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.context import Context

    # lazy: gssplat_ros.ros pulls rclpy and the ROS messages, which only this ROS step needs
    from gssplat_ros.ros.conversions import pose_to_msg
    from gssplat_ros.ros.spin import BackgroundSpinner

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.size.split("x"))
    t_start = time.monotonic()

    # 1. Scene, with held-out frames inside the span of the final window.
    scenes = out / "scenes"
    sh([bin_path("gssplat"), "data", "generate", "--out", scenes, "--scenes", 1, "--frames", args.frames,
        "--size", args.size, "--seed", args.seed])
    scene = sorted(p for p in scenes.iterdir() if p.is_dir())[0]
    held_out = list(range(args.frames - 2 * args.holdout, args.frames - 1, 2))[: args.holdout]
    keep = [i for i in range(args.frames) if i not in held_out]
    make_subscene(scene, out / "bag_scene", keep)
    held_out_poses = {i: load_scene(scene, "scannet", size=(width, height)).poses[i].numpy() for i in held_out}

    # 2. Bag of the kept frames.
    bag = out / "input_bag"
    if bag.exists():
        shutil.rmtree(bag)
    sh([bin_path("gssplat"), "bag", "write-scene", out / "bag_scene", bag, "--rate", args.rate])

    # 3. The node, as its own process (the real executable, shipped weights).
    env = dict(os.environ)
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    params = Path(__file__).resolve().parents[1] / "config" / "gssplat.yaml"
    node_cmd = [bin_path("gssplat_node"), "--ros-args", "-r", f"__node:={NODE_NAME}", "-r", f"__ns:={NAMESPACE}"]
    if params.exists():
        node_cmd += ["--params-file", str(params)]
    if args.checkpoint:
        node_cmd += ["-p", f"checkpoint:={Path(args.checkpoint).resolve()}"]
    node_cmd += ["-p", f"window_size:={args.views}", "-p", "qos_profile:=reliable",
                 "-r", "image:=/camera/image_raw", "-r", "camera_info:=/camera/camera_info",
                 "-r", "pose:=/camera/pose", "-r", "depth:=/camera/depth"]
    print("$", " ".join(node_cmd), flush=True)
    node_log = open(out / "node.log", "w")
    node_proc = subprocess.Popen(node_cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT, start_new_session=True)

    ctx = Context()
    rclpy.init(context=ctx)
    rec = Recorder(ctx)
    spinner = BackgroundSpinner(ctx, rec.node)
    try:
        # Wait until the node is up (its output publishers appear), then play the bag.
        deadline = time.monotonic() + 120
        topic = f"{NAMESPACE}/{NODE_NAME}/render/image"
        while time.monotonic() < deadline and not rec.node.get_publishers_info_by_topic(topic):
            if node_proc.poll() is not None:
                raise RuntimeError(f"gssplat_node exited early; see {out / 'node.log'}")
            time.sleep(0.2)
        sh([bin_path("gssplat"), "bag", "play", bag, "--qos", "reliable"], env=env)
        frames_in = len(keep)
        # Let the last window finish, then ask for the held-out views.
        settle = time.monotonic() + args.settle_s
        while time.monotonic() < settle:
            time.sleep(0.2)
        n_before = len(rec.images)
        for i in held_out:
            msg = pose_to_msg(held_out_poses[i], stamp_ns=10**9 * (1000 + i), frame_id="map")
            rec.pose_pub.publish(msg)
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(rec.images) < n_before + len(held_out):
            time.sleep(0.1)
        t_end = time.monotonic()
    finally:
        os.killpg(node_proc.pid, signal.SIGINT)
        try:
            node_proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(node_proc.pid, signal.SIGKILL)
        spinner.stop()
        rec.node.destroy_node()
        rclpy.try_shutdown(context=ctx)

    # 4. Score the held-out renders (matched by stamp) against ground truth.
    by_stamp = {}
    for _, m in rec.images[n_before:]:
        by_stamp[m.header.stamp.sec * 10**9 + m.header.stamp.nanosec] = m
    sem_by_stamp = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec: m for _, m in rec.semantic}
    depth_by_stamp = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec: m for _, m in rec.depth}
    psnrs, mious, sheet_rows = [], [], []
    gt = None
    for i in held_out:
        stamp = 10**9 * (1000 + i)
        if stamp not in by_stamp or stamp not in sem_by_stamp:
            continue
        msg = by_stamp[stamp]
        if gt is None:  # ground truth at the render resolution
            gt = load_scene(scene, "scannet", size=(msg.width, msg.height))
        f = gt.frame(i)
        rgb = image_to_numpy(msg).astype(np.float32) / 255.0
        labels = image_to_numpy(sem_by_stamp[stamp]).astype(np.int64)
        depth = image_to_numpy(depth_by_stamp[stamp]) if stamp in depth_by_stamp else np.zeros(labels.shape, np.float32)
        gt_rgb = f.image.permute(1, 2, 0).numpy()
        valid = (f.depth > 0).numpy()
        psnrs.append(image_metrics(rgb, gt_rgb, valid)["psnr"])
        mious.append(semantic_metrics(labels, f.labels.numpy())["miou"])
        sheet_rows.append((gt_rgb, rgb, labels, depth))

    summary = {
        "frames_in": frames_in,
        "renders_out": len(rec.images),
        "clouds_out": len(rec.clouds),
        "held_out_views": len(held_out),
        "held_out_rendered": len(psnrs),
        "psnr_db": float(np.mean(psnrs)) if psnrs else None,
        "miou": float(np.mean(mious)) if mious else None,
        "wall_s": round(t_end - t_start, 1),
    }
    summary.update(_node_stats(out / "node.log"))
    if sheet_rows:
        _contact_sheet(sheet_rows, out / "contact_sheet.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("\n== gssplat demo summary ==")
    for k, v in summary.items():
        print(f"{k:>22}: {v if not isinstance(v, float) else round(v, 3)}")
    print(f"contact sheet: {out / 'contact_sheet.png'}")
    return 0 if psnrs else 1


def _node_stats(log_path: Path) -> dict:
    """The node logs a final stats line as JSON on shutdown (keyframes, latency percentiles)."""
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if "GSSPLAT_STATS" in line:
            try:
                return json.loads(line.split("GSSPLAT_STATS", 1)[1].strip())
            except json.JSONDecodeError:
                break
    return {}


def _contact_sheet(rows, path: Path) -> None:
    """One row per held-out view: input (ground truth) | rendered RGB | rendered labels | rendered depth."""
    from PIL import Image

    tiles = []
    for gt_rgb, rgb, labels, depth in rows:
        lab = PALETTE[np.clip(labels, 0, len(PALETTE) - 1)]
        lab[labels == 255] = 0
        d = np.nan_to_num(depth, nan=0.0)
        d = (255 * d / max(float(d.max()), 1e-6)).astype(np.uint8)
        tiles.append(np.concatenate([(gt_rgb * 255).astype(np.uint8), (rgb * 255).astype(np.uint8), lab,
                                     np.repeat(d[..., None], 3, -1)], 1))
    Image.fromarray(np.concatenate(tiles, 0)).save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out")
    p.add_argument("--frames", type=int, default=48)
    p.add_argument("--size", default="320x240")
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--holdout", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="bag publish rate, Hz")
    p.add_argument("--settle-s", type=float, default=8.0)
    p.add_argument("--checkpoint", default="", help="default: the shipped weights")
    args = p.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
