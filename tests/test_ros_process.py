"""gssplat_node as its own process (the real executable and config/gssplat.yaml), over DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from gssplat_ros.ros import conversions as conv  # noqa: E402
from tests.ros_harness import RELIABLE, random_checkpoint, scene_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODE = str(Path(sys.executable).parent / "gssplat_node")


def node_cmd(ns, *params):
    cmd = [NODE, "--ros-args", "--params-file", str(ROOT / "config" / "gssplat.yaml"), "-r", f"__ns:={ns}"]
    for p in params:
        cmd += ["-p", p]
    return cmd


def env():
    e = dict(os.environ)
    e.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    return e


def test_out_of_range_parameter_exits_with_one_clear_line(tmp_path):
    r = subprocess.run(node_cmd("/bad", "window_size:=1", f"checkpoint:={random_checkpoint(tmp_path)}"),
                       capture_output=True, text=True, env=env(), timeout=120)
    assert r.returncode == 2
    assert "invalid parameter" in r.stderr and "window_size" in r.stderr and "Traceback" not in r.stderr


def test_node_process_renders_published_frames(tmp_path):
    ckpt = random_checkpoint(tmp_path)
    frames = scene_frames(tmp_path, frames=5, size=(64, 48))
    ns = "/p" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        node_cmd(ns, f"checkpoint:={ckpt}", "device:=cpu", "depth_mode:=sensor", "window_size:=2", "model_width:=64",
                 "model_height:=48", "qos_profile:=reliable", "keyframe_translation_m:=0.01"),
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    ctx = Context()
    rclpy.init(context=ctx)
    peer = rclpy.create_node("peer", namespace=ns, context=ctx)
    got = []
    peer.create_subscription(Image, f"{ns}/gssplat/render/semantic", got.append, RELIABLE)
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    pubs = {n: peer.create_publisher(t, f"{ns}/{n}", RELIABLE) for n, t in
            (("image", Image), ("camera_info", CameraInfo), ("pose", PoseStamped), ("depth", Image))}
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(peer)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and pubs["image"].get_subscription_count() == 0:
            ex.spin_once(timeout_sec=0.1)
            assert proc.poll() is None, proc.stdout.read()
        for i, (rgb, K, pose, depth) in enumerate(frames):
            h = Header(stamp=conv.ns_to_stamp(10**9 + i * 10**8), frame_id="cam")
            pubs["camera_info"].publish(conv.camera_info_msg(K, 64, 48, h))
            ex.spin_once(timeout_sec=0.2)
            pubs["image"].publish(conv.numpy_to_image(rgb, h, "rgb8"))
            pubs["depth"].publish(conv.numpy_to_image(depth, h, "32FC1"))
            p = conv.pose_to_msg(pose, 0, "map")
            p.header.stamp = h.stamp  # the pose is in world_frame ("map"), stamped like its image
            pubs["pose"].publish(p)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not got:
            ex.spin_once(timeout_sec=0.1)
        assert got and got[-1].encoding == "mono8" and (got[-1].width, got[-1].height) == (64, 48)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        ex.shutdown()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)
    assert proc.returncode == 0, out
    assert "GSSPLAT_STATS" in out and "Traceback" not in out
