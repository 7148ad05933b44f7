"""Real-rclpy test harness: a private Context, the node under test, and a publisher/recorder node.

Each harness uses its own Context and a unique namespace, so tests never hear each other.
Waiting is on conditions with deadlines, not fixed sleeps.
"""

from __future__ import annotations

import collections
import time
import uuid
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from gssplat_ros.ros import conversions as conv
from gssplat_ros.ros.spin import BackgroundSpinner

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def random_checkpoint(path: Path, depth_mode: str = "sensor") -> str:
    """A freshly initialised tiny model (shapes and plumbing only; quality comes from the shipped weights)."""
    import torch

    from gssplat_ros.model import GSsplatNet, ModelConfig
    from gssplat_ros.model.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", depth_mode=depth_mode)
    stem = path / f"random_{depth_mode}"
    save_checkpoint(stem, GSsplatNet(cfg), cfg, {})
    return str(stem)


class Harness:
    def __init__(self, params: dict, node_cls=None, subscribe=None, autostart: bool = True):
        """subscribe: the output keys the peer listens to (default: all of them).
        autostart: configure and activate the lifecycle node as `gssplat_node` does (its exception, if any,
        propagates); False leaves it unconfigured, for a peer to drive through ~/change_state."""
        from gssplat_ros.ros.node import GssplatNode, activate_at_start

        self.ns = "/t" + uuid.uuid4().hex[:8]
        self.ctx = Context()
        rclpy.init(context=self.ctx)
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        try:
            self.node = (node_cls or GssplatNode)(context=self.ctx, namespace=self.ns, parameter_overrides=overrides)
            if autostart:
                activate_at_start(self.node)
        except BaseException:
            node = getattr(self, "node", None)
            if node is not None:
                node.shutdown()
                node.destroy_node()
            rclpy.try_shutdown(context=self.ctx)
            raise
        self.peer = rclpy.create_node("peer", namespace=self.ns, context=self.ctx)
        self.received: dict[str, list] = {k: [] for k in
                                          ("image", "semantic", "semantic_color", "depth", "camera_info", "diag")}
        # clouds are MBs each: keep the newest few, so long runs measure the node's memory, not the test's
        self.received["cloud"] = collections.deque(maxlen=4)
        base = f"{self.ns}/gssplat"
        subs = {"image": (Image, "render/image"), "semantic": (Image, "render/semantic"),
                "semantic_color": (Image, "render/semantic_color"), "depth": (Image, "render/depth"),
                "camera_info": (CameraInfo, "render/camera_info"), "cloud": (PointCloud2, "gaussians")}
        for key, (t, topic) in subs.items():
            if subscribe is not None and key not in subscribe:
                continue
            self.peer.create_subscription(t, f"{base}/{topic}", lambda m, k=key: self.received[k].append(m), RELIABLE)
        self.peer.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: self.received["diag"].append(m), RELIABLE)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE
                         if params.get("qos_profile") == "reliable" else ReliabilityPolicy.BEST_EFFORT)
        self.pub_image = self.peer.create_publisher(Image, f"{self.ns}/image", qos)
        self.pub_info = self.peer.create_publisher(CameraInfo, f"{self.ns}/camera_info", qos)
        self.pub_pose = self.peer.create_publisher(PoseStamped, f"{self.ns}/pose", qos)
        self.pub_depth = self.peer.create_publisher(Image, f"{self.ns}/depth", qos)
        self.pub_render_pose = self.peer.create_publisher(PoseStamped, f"{base}/render_pose", RELIABLE)
        self.spinner = BackgroundSpinner(self.ctx, self.node, self.peer)  # one thread, as gssplat_node spins
        if autostart:
            self.wait_for(lambda: self.pub_image.get_subscription_count() > 0, 10)

    def publish_frame(self, stamp_ns, rgb, K, pose, depth=None, encoding="rgb8", info_size=None, send_info=True):
        header = Header(stamp=conv.ns_to_stamp(stamp_ns), frame_id="camera")
        h, w = rgb.shape[:2]
        if send_info:
            iw, ih = info_size or (w, h)
            self.pub_info.publish(conv.camera_info_msg(K, iw, ih, header))
            # A camera streams camera_info continuously; here the first one must land before its image.
            inputs = getattr(self.node, "inputs", self.node)  # the node's InputStage holds the latest camera_info
            self.wait_for(lambda: getattr(inputs, "_camera_info", None) is not None, 5)
        img = conv.numpy_to_image(rgb, header, "rgb8")
        img.encoding = encoding
        self.pub_image.publish(img)
        if depth is not None:
            self.pub_depth.publish(conv.numpy_to_image(depth.astype(np.float32), header, "32FC1"))
        msg = conv.pose_to_msg(pose, stamp_ns, "map") if isinstance(pose, np.ndarray) else pose
        msg.header = Header(stamp=header.stamp, frame_id="map")  # a pose in the world frame, of the camera
        self.pub_pose.publish(msg)

    @staticmethod
    def wait_for(cond, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    def close(self):
        self.spinner.stop()
        self.node.shutdown()
        self.node.destroy_node()
        self.peer.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def scene_frames(tmp: Path, frames: int = 6, size=(64, 48), seed=3):
    """(rgb, K, world_from_cam, depth) of a small generated scene."""
    from gssplat_ros.data import load_scene
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset

    out = tmp / "scene"
    if not out.exists():
        generate_dataset(GenerateConfig(out=str(out), scenes=1, frames=frames, width=size[0], height=size[1],
                                        seed=seed, step_m=0.12))
    scene_dir = sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("scene"))[0]
    scene = load_scene(scene_dir, "scannet", size=size)
    result = []
    for i in range(len(scene)):
        f = scene.frame(i)
        rgb = (f.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        result.append((rgb, f.K.numpy().astype(np.float64), f.world_from_cam.numpy().astype(np.float64),
                       f.depth.numpy().astype(np.float32)))
    return result
