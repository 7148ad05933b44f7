"""The node's inputs: subscriptions, sync, decoding, camera models, poses (topics or TF), depth registration.

Usage:
    stage = InputStage(node, cfg, on_frame, on_drop, note)   # subscribes on `node`
    on_frame(frame: window.Frame, stamp_ns: int, header)       # a synced, rectified, posed frame
    on_drop(reason: str, message: str)                         # a frame dropped (the caller counts and warns)
    note(kind: str)                                            # an input arrived: image, pose, camera_info,
                                                               # depth_camera_info, frame (a synced set),
                                                               # world_check (the pose failed the world check)
    stage.world_check_message                                  # None, or why the latest pose looks wrong
    stage.close()                                              # destroy what it created (lifecycle deactivate)

Topics, as image_transport names them: `image` (sensor_msgs/Image) or `image/compressed` (CompressedImage,
`image_transport: compressed`); `depth` or `depth/compressedDepth`; `camera_info`; `depth/camera_info` with
`register_depth`; `pose` (PoseStamped) or `odom` (Odometry) unless `pose_source: tf`.

Poses (REP 105): with `pose_source: tf` the pose is world_frame <- the image's header.frame_id at the image
stamp. From a topic, the pose's header.frame_id must be world_frame (or be transformed into it by TF) and
the pose is of the optical frame, unless `camera_from_body` gives the extrinsic of the body frame it is of;
an Odometry of another frame without that extrinsic is dropped with a message naming what to set, never
used as an optical-frame pose. Every frame that cannot be used goes to on_drop with a diagnostics reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Optional

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.duration import Duration
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from gssplat_ros import transforms
from gssplat_ros.camera_models import CameraModelError
from gssplat_ros.depth_registration import register_depth
from gssplat_ros.node_config import NodeConfig
from gssplat_ros.ros import conversions as conv
from gssplat_ros.ros import tf
from gssplat_ros.ros.sync import make_synchronizer
from gssplat_ros.window import Frame, FrameError
from gssplat_ros.world_check import check_world_convention


class InputConfigError(ValueError):
    """Inputs that cannot start as configured (one line for the user)."""


class _Drop(Exception):  # noqa: N818 -- internal: a frame to drop, with its diagnostics reason
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def input_qos(cfg: NodeConfig) -> QoSProfile:
    """Sensor data (best effort) by default; reliable on request."""
    if cfg.qos_profile == "reliable":
        return QoSProfile(depth=cfg.qos_depth, reliability=ReliabilityPolicy.RELIABLE)
    return QoSProfile(depth=cfg.qos_depth, reliability=qos_profile_sensor_data.reliability,
                      durability=qos_profile_sensor_data.durability, history=qos_profile_sensor_data.history)


def _from_tf(extrinsic_text: str) -> bool:
    return isinstance(transforms.parse_extrinsic(extrinsic_text), str)


def needs_tf(cfg: NodeConfig) -> list[str]:
    """The parameters whose values need a TF buffer (empty when none does)."""
    uses = []
    if cfg.pose_source == "tf":
        uses.append("pose_source: tf")
    if cfg.pose_source != "tf" and _from_tf(cfg.camera_from_body):
        uses.append("camera_from_body: tf")
    if cfg.register_depth and _from_tf(cfg.color_from_depth):
        uses.append("color_from_depth: tf")
    if cfg.floor_frame:
        uses.append(f"floor_frame: {cfg.floor_frame}")
    return uses


def check_inputs(cfg: NodeConfig) -> None:
    """Raise InputConfigError when the parameters need TF and this install has no tf2_ros (a start-up error)."""
    uses_tf = needs_tf(cfg)
    if uses_tf and not tf.HAVE_TF2_ROS:
        raise InputConfigError(
            f"{', '.join(uses_tf)} needs TF, but this install has no tf2_ros (tf2_msgs has no pip wheel): "
            "apt install ros-$ROS_DISTRO-tf2-ros, or give poses on the pose/odom topics and extrinsics "
            "as 'x y z qx qy qz qw'")


class InputStage:
    """Creates the node's input subscriptions and turns synced messages into core Frames (module docstring)."""

    def __init__(self, node, cfg: NodeConfig, on_frame: Callable[[Frame, int, object], None],
                 on_drop: Callable[[str, str], None], note: Callable[[str], None] = lambda kind: None,
                 tf_buffer=None, callback_group=None):
        """tf_buffer: a buffer with tf2_ros.Buffer's interface to use instead of listening to /tf (tests)."""
        self.node, self.cfg = node, cfg
        self.on_frame, self.on_drop, self.note = on_frame, on_drop, note
        self.world_check_message: Optional[str] = None
        self._camera_info: Optional[CameraInfo] = None
        self._depth_info: Optional[CameraInfo] = None
        self._last_warn: dict[str, float] = {}
        self._camera_from_body = transforms.parse_extrinsic(cfg.camera_from_body)
        self._color_from_depth = transforms.parse_extrinsic(cfg.color_from_depth)
        self.tf_buffer, self._tf_listener = tf_buffer, None
        if needs_tf(cfg) and tf_buffer is None:
            check_inputs(cfg)
            self.tf_buffer = tf.make_buffer(node=node)
            # Its own spin thread: a lookup that waits for the transform at the image stamp must not block
            # the executor thread that would deliver it.
            self._tf_listener = tf.tf2_ros.TransformListener(self.tf_buffer, node, spin_thread=True)

        qos = input_qos(cfg)
        group = callback_group
        image_input = ((CompressedImage, "image/compressed") if cfg.image_transport == "compressed"
                       else (Image, "image"))
        pose_input = None
        if cfg.pose_source != "tf":
            pose_input = (PoseStamped, "pose") if cfg.pose_source == "pose" else (Odometry, "odom")
        depth_input = None
        if cfg.use_depth:
            depth_input = ((CompressedImage, "depth/compressedDepth") if cfg.depth_transport == "compressedDepth"
                           else (Image, "depth"))
        synced = [image_input] + ([pose_input] if pose_input else []) + ([depth_input] if depth_input else [])
        self._has_pose, self._has_depth = pose_input is not None, depth_input is not None
        self._sync = make_synchronizer(node, synced, qos, cfg.sync_queue_size, cfg.sync_slop_s,
                                       self._guarded(self._on_synced), callback_group=group, guard=self._guarded,
                                       reset_on_jump_back_s=cfg.sync_reset_jump_back_s)
        self._subs = [
            node.create_subscription(CameraInfo, "camera_info", self._guarded(self._on_camera_info), qos,
                                     callback_group=group),
            # Raw arrival counts (diagnostics "no pose received") beside the sync path.
            node.create_subscription(image_input[0], image_input[1], self._guarded(lambda _m: note("image")), qos,
                                     callback_group=group),
        ]
        if pose_input:
            self._subs.append(node.create_subscription(pose_input[0], pose_input[1],
                                                       self._guarded(lambda _m: note("pose")), qos,
                                                       callback_group=group))
        if cfg.register_depth:
            self._subs.append(node.create_subscription(CameraInfo, "depth/camera_info",
                                                       self._guarded(self._on_depth_info), qos, callback_group=group))

    # ----------------------------------------------------------------- callbacks
    def _guarded(self, callback):
        def guarded(*args):
            try:
                return callback(*args)
            except Exception as exc:  # a malformed message or a bug must never take the executor down
                self.on_drop("internal_error", f"{getattr(callback, '__name__', 'callback')}: "
                                               f"{type(exc).__name__}: {exc}")
        return guarded

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self._camera_info = msg
        self.note("camera_info")

    def _on_depth_info(self, msg: CameraInfo) -> None:
        self._depth_info = msg
        self.note("depth_camera_info")

    def _on_synced(self, image, *rest) -> None:
        self.note("frame")
        rest = list(rest)
        pose_msg = rest.pop(0) if self._has_pose else None
        depth_msg = rest.pop(0) if self._has_depth else None
        stamp_ns = conv.stamp_to_ns(image.header.stamp)
        try:
            frame = self.to_frame(image, pose_msg, depth_msg, stamp_ns)
        except (_Drop, conv.ConversionError, CameraModelError, FrameError) as exc:
            self.on_drop(exc.reason, str(exc))
            return
        self.on_frame(frame, stamp_ns, image.header)

    # ----------------------------------------------------------------- conversion
    def to_frame(self, image, pose_msg, depth_msg, stamp_ns: int) -> Frame:
        """Synced messages -> a pinhole, posed Frame; raises with a `reason` for anything unusable."""
        info = self._camera_info
        if info is None:
            raise _Drop("missing_camera_info", "no camera_info received yet")
        rgb = conv.compressed_color_image(image) if isinstance(image, CompressedImage) else conv.color_image(image)
        rect = conv.camera_rectifier(info, self.cfg.image_rectified)  # cached per calibration
        rgb = rect.rectify_color(rgb)  # [H, W, 3] pinhole
        camera_frame = image.header.frame_id.lstrip("/")
        world_from_cam = self._pose(camera_frame, pose_msg, stamp_ns)
        depth_m = None
        if depth_msg is not None:
            depth_m = self._depth(depth_msg, rect, camera_frame, rgb.shape[1], rgb.shape[0])
        self._check_world(world_from_cam)
        return Frame(stamp_ns=stamp_ns, image=rgb, K=rect.K, world_from_cam=world_from_cam, depth=depth_m)

    def _lookup(self, target: str, source: str, stamp_ns: int, timeout_s: float = 0.0) -> np.ndarray:
        """target_from_source [4, 4] from TF (stamp 0 = latest); _Drop(tf_unavailable) when missing."""
        if self.tf_buffer is None:
            raise _Drop("tf_unavailable", f"{target} <- {source} needs TF, which is not running")
        try:
            t = self.tf_buffer.lookup_transform(target, source, Time(nanoseconds=stamp_ns),
                                                Duration(nanoseconds=int(timeout_s * 1e9)))
        except tf.TransformException as exc:
            raise _Drop("tf_unavailable", f"{target} <- {source} at {stamp_ns * 1e-9:.3f} s: "
                                          f"{type(exc).__name__}: {exc}") from None
        return tf.transform_to_matrix(t.transform)

    def _pose(self, camera_frame: str, pose_msg, stamp_ns: int) -> np.ndarray:
        """world_from_cam [4, 4] of the camera optical frame at the image stamp."""
        world = self.cfg.world_frame
        if pose_msg is None:  # pose_source tf
            if not camera_frame:
                raise _Drop("tf_unavailable", "the image has no header.frame_id to look up in TF")
            return self._lookup(world, camera_frame, stamp_ns, self.cfg.tf_timeout_s)
        is_odom = isinstance(pose_msg, Odometry)
        world_from_pose = conv.pose_msg_to_matrix(pose_msg.pose.pose if is_odom else pose_msg.pose)
        parent = pose_msg.header.frame_id.lstrip("/")
        if parent and parent != world:
            if self.tf_buffer is None:
                raise _Drop("unexpected_pose_frame", f"the pose is in '{parent}', world_frame is '{world}' "
                                                     "(and TF is not running to transform it)")
            world_from_pose = self._lookup(world, parent, stamp_ns, self.cfg.tf_timeout_s) @ world_from_pose
        body = pose_msg.child_frame_id.lstrip("/") if is_odom else ""
        expected = self.cfg.expected_pose_frame.lstrip("/")
        if expected and body and body != expected:
            raise _Drop("unexpected_pose_frame", f"the odometry is of '{body}', expected_pose_frame is '{expected}'")
        extrinsic = self._camera_from_body
        if extrinsic is None:
            if body and body != camera_frame and body != expected:
                raise _Drop("body_pose_without_extrinsic",
                            f"odom child_frame_id '{body}' is not the camera frame '{camera_frame}': set "
                            f"camera_from_body ('x y z qx qy qz qw' or 'tf'), or expected_pose_frame: {body} "
                            "if it is the camera optical frame")
            return world_from_pose
        if isinstance(extrinsic, str):  # EXTRINSIC_FROM_TF
            body = body or expected
            extrinsic = self._lookup(camera_frame, body, 0)  # a static mount: the latest transform
        return transforms.optical_pose_from_body_pose(world_from_pose, extrinsic)

    def _depth(self, depth_msg, rect, camera_frame: str, width: int, height: int) -> np.ndarray:
        """Depth message -> [H, W] float32 metres in the (rectified) colour camera, 0 = invalid."""
        if isinstance(depth_msg, CompressedImage):
            depth = conv.compressed_depth_image(depth_msg)
        else:
            depth = conv.depth_image(depth_msg)
        if not self.cfg.register_depth:
            if depth.shape != (height, width):
                raise _Drop("depth_size_mismatch", f"depth {depth.shape[::-1]} vs image {(width, height)}; "
                                                   "set register_depth if it is another camera's")
            return rect.rectify_depth(depth)
        info = self._depth_info
        if info is None:
            raise _Drop("missing_depth_camera_info", "register_depth is on but no depth/camera_info received yet")
        depth_rect = conv.camera_rectifier(info)
        depth = depth_rect.rectify_depth(depth)
        color_from_depth = self._color_from_depth
        if isinstance(color_from_depth, str):  # EXTRINSIC_FROM_TF
            color_from_depth = self._lookup(camera_frame, depth_msg.header.frame_id.lstrip("/"), 0)
        return register_depth(depth, depth_rect.K, rect.K, color_from_depth, (width, height))

    # ----------------------------------------------------------------- world check
    def _floor_z(self) -> float:
        if not self.cfg.floor_frame:
            return self.cfg.pipeline.floor_z_m
        try:
            return float(self._lookup(self.cfg.world_frame, self.cfg.floor_frame, 0)[2, 3])
        except _Drop as exc:
            self._warn("floor_frame", f"world check uses floor_z_m: {exc}")
            return self.cfg.pipeline.floor_z_m

    def _check_world(self, world_from_cam: np.ndarray) -> None:
        if not self.cfg.world_check:
            return
        self.world_check_message = check_world_convention(world_from_cam, self._floor_z())
        if self.world_check_message is not None:
            self.note("world_check")
            self._warn("world_check", f"world check: {self.world_check_message}")

    def _warn(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last_warn.get(key, -1e9) >= self.cfg.warn_throttle_s:
            self._last_warn[key] = now
            self.node.get_logger().warn(message)

    # ----------------------------------------------------------------- teardown
    def close(self) -> None:
        """Destroy the subscriptions this stage created (the node stays)."""
        subs, _ = self._sync
        for sub in list(subs) + self._subs:
            self.node.destroy_subscription(getattr(sub, "sub", sub))  # message_filters wraps its subscription
        self._subs = []
        self._sync = ([], None)
        if self._tf_listener is not None:
            self._tf_listener.unregister()
            self._tf_listener = None
