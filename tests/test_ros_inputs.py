"""The node's InputStage over real DDS: a minimal rclpy node owns it, a peer publishes what robots publish
(compressed and mono images, distorted cameras, odometry of base_link, a depth camera with its own
camera_info), and the frames that come out are checked against the core's own rectification, pose and
registration maths; bad input must be a counted drop with its reason.

TF: tf2_msgs has no pip wheel, so /tf cannot be subscribed to here; the TF path feeds a TfBuffer (tf2_ros's
interface) directly while the images still travel over DDS.
"""

from __future__ import annotations

import threading
import uuid

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import PoseStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from gssplat_ros import transforms  # noqa: E402
from gssplat_ros.camera_models import CameraModel, Rectifier  # noqa: E402
from gssplat_ros.depth_registration import register_depth  # noqa: E402
from gssplat_ros.node_config import node_config_from_parameters  # noqa: E402
from gssplat_ros.ros import conversions as conv  # noqa: E402
from gssplat_ros.ros import tf  # noqa: E402
from gssplat_ros.ros.inputs import InputConfigError, InputStage  # noqa: E402
from gssplat_ros.ros.spin import BackgroundSpinner  # noqa: E402
from tests.ros_harness import Harness  # noqa: E402

RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
W, H = 64, 48
K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
CAMERA = "camera_optical_frame"
# base_link (x forward, z up) with the camera 0.2 m forward, 0.5 m up, looking forward:
# body_from_optical = mount @ LINK_FROM_OPTICAL, and camera_from_body is its inverse.
BODY_FROM_OPTICAL = transforms.matrix_from_parts([0.2, 0.0, 0.5], [0, 0, 0, 1]) @ transforms.LINK_FROM_OPTICAL
CAMERA_FROM_BODY = transforms.rigid_inverse(BODY_FROM_OPTICAL)


def extrinsic_text(T: np.ndarray) -> str:
    trans, quat = transforms.parts_from_matrix(T)
    return " ".join(f"{v:.9f}" for v in list(trans) + list(quat))


def pattern_image():
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    return np.stack([(u * 4) % 256, (v * 5) % 256, ((u + v) * 3) % 256], -1).astype(np.uint8)


def camera_info(K_=K, d=(), model="plumb_bob", size=(W, H), frame=CAMERA, p=None):
    info = CameraInfo(header=Header(frame_id=frame), width=size[0], height=size[1], distortion_model=model)
    info.k = [float(x) for x in K_.reshape(-1)]
    info.d = [float(x) for x in d]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    P = np.zeros((3, 4))
    P[:, :3] = K_ if p is None else p
    info.p = [float(x) for x in P.reshape(-1)]
    return info


def header(stamp_ns, frame=CAMERA):
    return Header(stamp=conv.ns_to_stamp(stamp_ns), frame_id=frame)


class Rig:
    """A node owning an InputStage, and a peer publishing its inputs, on a private graph."""

    def __init__(self, params: dict, tf_buffer=None):
        self.ctx = Context()
        rclpy.init(context=self.ctx)
        self.ns = "/i" + uuid.uuid4().hex[:8]
        self.node = rclpy.create_node("inputs_under_test", namespace=self.ns, context=self.ctx)
        self.peer = rclpy.create_node("robot", namespace=self.ns, context=self.ctx)
        self.frames, self.drops, self.notes = [], [], []
        cfg = node_config_from_parameters({"qos_profile": "reliable", "sync_slop_s": 0.01, **params})
        self.stage = InputStage(self.node, cfg, lambda f, s, h: self.frames.append((f, s, h)),
                                lambda r, m: self.drops.append((r, m)), self.notes.append, tf_buffer=tf_buffer)
        image_type, image_topic = ((CompressedImage, "image/compressed") if cfg.image_transport == "compressed"
                                   else (Image, "image"))
        depth_topic = "depth/compressedDepth" if cfg.depth_transport == "compressedDepth" else "depth"
        self.pubs = {
            "image": self.peer.create_publisher(image_type, image_topic, RELIABLE),
            "info": self.peer.create_publisher(CameraInfo, "camera_info", RELIABLE),
            "depth_info": self.peer.create_publisher(CameraInfo, "depth/camera_info", RELIABLE),
            "pose": self.peer.create_publisher(PoseStamped, "pose", RELIABLE),
            "odom": self.peer.create_publisher(Odometry, "odom", RELIABLE),
            "depth": self.peer.create_publisher(CompressedImage if depth_topic.endswith("Depth") else Image,
                                                depth_topic, RELIABLE),
        }
        self.spinner = BackgroundSpinner(self.ctx, self.node, self.peer)
        assert wait_for(lambda: self.pubs["image"].get_subscription_count() > 0
                        and self.pubs["info"].get_subscription_count() > 0, 10)

    def publish(self, key, msg):
        self.pubs[key].publish(msg)

    def send_info(self, info, key="info", kind="camera_info"):
        count = self.notes.count(kind)
        self.publish(key, info)
        assert wait_for(lambda: self.notes.count(kind) > count, 10)

    def close(self):
        self.spinner.stop()
        self.stage.close()
        self.node.destroy_node()
        self.peer.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


wait_for = Harness.wait_for  # one deadline-based wait for every DDS test


@pytest.fixture
def rig():
    made = []

    def make(params, tf_buffer=None):
        made.append(Rig(params, tf_buffer))
        return made[-1]

    yield make
    for r in made:
        r.close()


def odometry(stamp_ns, world_from_body, child="base_link", parent="map"):
    msg = Odometry(header=header(stamp_ns, parent), child_frame_id=child)
    msg.pose.pose = conv.matrix_to_pose_msg(world_from_body)
    return msg


def png_message(rgb, stamp_ns):
    _, data = cv2.imencode(".png", rgb[..., ::-1].copy())
    return CompressedImage(header=header(stamp_ns), format="rgb8; png compressed bgr8", data=data.tobytes())


def test_compressed_distorted_image_with_odometry_of_base_link(rig):
    r = rig({"image_transport": "compressed", "pose_source": "odom", "use_depth": False,
             "camera_from_body": extrinsic_text(CAMERA_FROM_BODY), "expected_pose_frame": "base_link"})
    d = (-0.25, 0.08, 0.001, -0.002, 0.0)
    P = K.copy()
    P[0, 0] = P[1, 1] = 45.0  # the rectified camera's own intrinsics
    r.send_info(camera_info(d=d, p=P))
    rgb = pattern_image()
    world_from_body = transforms.matrix_from_parts([1.0, 2.0, 0.0], [0, 0, np.sin(0.3), np.cos(0.3)])
    r.publish("image", png_message(rgb, 10**9))
    r.publish("odom", odometry(10**9, world_from_body))
    assert wait_for(lambda: r.frames, 10), r.drops
    frame, stamp_ns, hdr = r.frames[0]
    assert stamp_ns == 10**9 and hdr.frame_id == CAMERA
    rect = Rectifier(CameraModel.from_camera_info(camera_info(d=d, p=P)))
    assert rect.needs_remap
    assert np.array_equal(frame.image, rect.rectify_color(rgb))  # png is lossless: the same remap exactly
    assert not np.array_equal(frame.image, rgb)
    assert np.allclose(frame.K, P)
    expected = world_from_body @ BODY_FROM_OPTICAL
    assert np.allclose(frame.world_from_cam, expected, atol=1e-6)
    # The optical z (forward) is base_link's x rotated by the yaw: a level camera, image-up = world +z.
    assert np.allclose(frame.world_from_cam[:3, 2], [np.cos(0.6), np.sin(0.6), 0.0], atol=1e-6)
    assert r.stage.world_check_message is None
    assert {"image", "pose", "camera_info", "frame"} <= set(r.notes)

    # A jpeg that does not decode, and odometry of another body frame: counted drops.
    r.publish("image", CompressedImage(header=header(2 * 10**9), format="jpeg", data=b"\xff\xd8 not a jpeg"))
    r.publish("odom", odometry(2 * 10**9, world_from_body))
    r.publish("image", png_message(rgb, 3 * 10**9))
    r.publish("odom", odometry(3 * 10**9, world_from_body, child="imu_link"))
    assert wait_for(lambda: len(r.drops) >= 2, 10)
    assert [d[0] for d in r.drops] == ["bad_compressed", "unexpected_pose_frame"]
    assert len(r.frames) == 1


def test_odometry_of_a_body_without_extrinsic_is_dropped_with_what_to_set(rig):
    r = rig({"pose_source": "odom", "use_depth": False})
    r.send_info(camera_info())
    rgb = pattern_image()
    r.publish("image", conv.numpy_to_image(rgb, header(10**9), "rgb8"))
    r.publish("odom", odometry(10**9, np.eye(4)))
    assert wait_for(lambda: r.drops, 10)
    reason, message = r.drops[0]
    assert reason == "body_pose_without_extrinsic" and "camera_from_body" in message and "base_link" in message
    # Odometry of the optical frame itself is used as is; a pose in another world frame is not.
    world_from_cam = transforms.matrix_from_parts([0.0, 0.0, 1.2], [0.5, -0.5, 0.5, -0.5])
    r.publish("image", conv.numpy_to_image(rgb, header(2 * 10**9), "rgb8"))
    r.publish("odom", odometry(2 * 10**9, world_from_cam, child=CAMERA))
    r.publish("image", conv.numpy_to_image(rgb, header(3 * 10**9), "rgb8"))
    r.publish("odom", odometry(3 * 10**9, world_from_cam, child=CAMERA, parent="odom"))
    assert wait_for(lambda: r.frames and len(r.drops) >= 2, 10), r.drops
    assert np.allclose(r.frames[0][0].world_from_cam, world_from_cam)
    assert np.array_equal(r.frames[0][0].image, rgb)  # no distortion, R = I: no remap
    assert r.drops[1][0] == "unexpected_pose_frame" and "'odom'" in r.drops[1][1]


def test_camera_models_mono_rectified_and_unknown(rig):
    r = rig({"pose_source": "pose", "use_depth": False, "image_rectified": True})
    P = K.copy()
    P[0, 2] = 30.0
    r.send_info(camera_info(d=(0.1, 0.0, 0.0, 0.0), model="equidistant", p=P))
    mono = pattern_image()[..., 0].copy()
    world_from_cam = transforms.matrix_from_parts([0.0, 0.0, 1.2], [0.5, -0.5, 0.5, -0.5])
    r.publish("image", conv.numpy_to_image(mono, header(10**9), "mono8"))
    r.publish("pose", conv.pose_to_msg(world_from_cam, 10**9, "map"))
    assert wait_for(lambda: r.frames, 10), r.drops
    frame = r.frames[0][0]
    assert np.array_equal(frame.image, np.repeat(mono[..., None], 3, -1))  # rectified input: no remap
    assert np.allclose(frame.K, P)  # but P's intrinsics

    r.send_info(camera_info(d=(0.1, 0.0, 0.0, 0.0), model="kannala_brandt"))
    r.publish("image", conv.numpy_to_image(mono, header(2 * 10**9), "mono8"))
    r.publish("pose", conv.pose_to_msg(world_from_cam, 2 * 10**9, "map"))
    assert wait_for(lambda: r.drops, 10)
    assert r.drops[0][0] == "unknown_distortion_model"
    assert len(r.frames) == 1


def test_depth_from_another_camera_is_registered(rig):
    depth_size = (40, 30)
    K_depth = np.array([[32.0, 0.0, 19.5], [0.0, 32.0, 14.5], [0.0, 0.0, 1.0]])
    color_from_depth = transforms.matrix_from_parts([-0.05, 0.0, 0.0], [0, 0, 0, 1])  # a 5 cm baseline
    r = rig({"pose_source": "pose", "register_depth": True, "color_from_depth": extrinsic_text(color_from_depth)})
    r.send_info(camera_info())
    rgb = pattern_image()
    world_from_cam = transforms.matrix_from_parts([0.0, 0.0, 1.2], [0.5, -0.5, 0.5, -0.5])
    depth = np.full(depth_size[::-1], 2.0, np.float32)  # a wall 2 m ahead
    depth[:, :10] = 1.0  # and a nearer post on the left

    def send(stamp_ns):
        r.publish("image", conv.numpy_to_image(rgb, header(stamp_ns), "rgb8"))
        r.publish("pose", conv.pose_to_msg(world_from_cam, stamp_ns, "map"))
        r.publish("depth", conv.numpy_to_image(depth, header(stamp_ns, "depth_optical_frame"), "32FC1"))

    send(10**9)  # before any depth camera_info: a counted drop
    assert wait_for(lambda: r.drops, 10)
    assert r.drops[0][0] == "missing_depth_camera_info"
    r.send_info(camera_info(K_depth, size=depth_size, frame="depth_optical_frame"), "depth_info",
                "depth_camera_info")
    send(2 * 10**9)
    assert wait_for(lambda: r.frames, 10), r.drops
    got = r.frames[0][0].depth
    assert got.shape == (H, W)
    assert np.array_equal(got, register_depth(depth, K_depth, K, color_from_depth, (W, H)))
    valid = got > 0
    assert valid.mean() > 0.6
    assert set(np.round(np.unique(got[valid]), 4)) <= {1.0, 2.0}
    # Left: the post (covering colour pixels 0-13 after the 5 cm shift); right: the wall.
    assert np.isclose(got[H // 2, 5], 1.0) and np.isclose(got[H // 2, W - 8], 2.0)


def tf_buffer_with_robot(stamps_s=(9.0, 11.0), xs=(0.0, 2.0)):
    buf = tf.TfBuffer()
    for stamp_s, x in zip(stamps_s, xs):
        buf.set_transform(tf.matrix_to_transform_stamped(transforms.matrix_from_parts([x, 0, 0], [0, 0, 0, 1]),
                                                         "map", "base_link", int(stamp_s * 1e9)), "test")
    buf.set_transform_static(tf.matrix_to_transform_stamped(BODY_FROM_OPTICAL, "base_link", CAMERA, 0), "test")
    return buf


def test_poses_from_tf_interpolate_wait_and_drop_when_missing(rig):
    buf = tf_buffer_with_robot()
    r = rig({"pose_source": "tf", "use_depth": False, "tf_timeout_s": 2.0}, tf_buffer=buf)
    r.send_info(camera_info())
    rgb = pattern_image()
    r.publish("image", conv.numpy_to_image(rgb, header(10 * 10**9), "rgb8"))
    assert wait_for(lambda: r.frames, 10), r.drops
    expected = transforms.matrix_from_parts([1.0, 0, 0], [0, 0, 0, 1]) @ BODY_FROM_OPTICAL  # halfway, x = 1
    assert np.allclose(r.frames[0][0].world_from_cam, expected, atol=1e-9)

    # An image newer than the transforms: the lookup waits (tf_timeout_s) for TF to catch up.
    late = threading.Timer(0.3, lambda: buf.set_transform(tf.matrix_to_transform_stamped(
        transforms.matrix_from_parts([4.0, 0, 0], [0, 0, 0, 1]), "map", "base_link", 13 * 10**9), "test"))
    late.start()
    r.publish("image", conv.numpy_to_image(rgb, header(12 * 10**9), "rgb8"))
    assert wait_for(lambda: len(r.frames) == 2, 10), r.drops
    assert np.isclose(r.frames[1][0].world_from_cam[0, 3], 3.0 + BODY_FROM_OPTICAL[0, 3])
    late.join()

    # Never arrives within the timeout (a stamp in the future), or an image frame TF does not know: drops.
    r.publish("image", conv.numpy_to_image(rgb, header(60 * 10**9), "rgb8"))
    r.publish("image", conv.numpy_to_image(rgb, header(11 * 10**9, "other_camera"), "rgb8"))
    assert wait_for(lambda: len(r.drops) >= 2, 15)
    assert [d[0] for d in r.drops] == ["tf_unavailable", "tf_unavailable"]
    assert "Extrapolation" in r.drops[0][1] and "other_camera" in r.drops[1][1]
    assert len(r.frames) == 2


def test_camera_from_body_from_tf_and_floor_frame_world_check(rig):
    buf = tf_buffer_with_robot()
    floor = transforms.matrix_from_parts([0, 0, 0.0], [0, 0, 0, 1])
    buf.set_transform_static(tf.matrix_to_transform_stamped(floor, "map", "base_footprint", 0), "test")
    r = rig({"pose_source": "odom", "use_depth": False, "camera_from_body": "tf", "floor_frame": "base_footprint"},
            tf_buffer=buf)
    r.send_info(camera_info())
    rgb = pattern_image()
    world_from_body = transforms.matrix_from_parts([0.5, 0, 0.0], [0, 0, 0, 1])
    r.publish("image", conv.numpy_to_image(rgb, header(10**9), "rgb8"))
    r.publish("odom", odometry(10**9, world_from_body))
    assert wait_for(lambda: r.frames, 10), r.drops
    assert np.allclose(r.frames[0][0].world_from_cam, world_from_body @ BODY_FROM_OPTICAL, atol=1e-9)
    assert r.stage.world_check_message is None

    # The floor frame says the floor is 3 m up: the camera (0.5 m) is below it. The frame still passes.
    buf.set_transform_static(tf.matrix_to_transform_stamped(
        transforms.matrix_from_parts([0, 0, 3.0], [0, 0, 0, 1]), "map", "base_footprint", 0), "test")
    r.publish("image", conv.numpy_to_image(rgb, header(2 * 10**9), "rgb8"))
    r.publish("odom", odometry(2 * 10**9, world_from_body))
    assert wait_for(lambda: len(r.frames) == 2, 10), r.drops
    assert "above the floor at z = 3.00" in r.stage.world_check_message
    assert "world_check" in r.notes


def test_world_check_flags_a_body_pose_taken_as_optical(rig):
    r = rig({"pose_source": "pose", "use_depth": False})
    r.send_info(camera_info())
    rgb = pattern_image()
    # base_link's pose (x forward, z up) published as if it were the optical frame's: image-up is -z_body.
    r.publish("image", conv.numpy_to_image(rgb, header(10**9), "rgb8"))
    r.publish("pose", conv.pose_to_msg(transforms.matrix_from_parts([0, 0, 0.5], [0, 0, 0, 1]), 10**9, "map"))
    assert wait_for(lambda: r.frames, 10), r.drops
    assert "expects a z-up world" in r.stage.world_check_message
    assert r.notes.count("world_check") == 1


@pytest.mark.skipif(tf.HAVE_TF2_ROS, reason="tf2_ros is installed: TF mode starts")
def test_tf_mode_without_tf2_refuses_to_start_with_one_line():
    ctx = Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("inputs_no_tf", namespace="/n" + uuid.uuid4().hex[:8], context=ctx)
    try:
        for params in ({"pose_source": "tf"}, {"pose_source": "odom", "camera_from_body": "tf"}):
            cfg = node_config_from_parameters(params)
            with pytest.raises(InputConfigError) as err:
                InputStage(node, cfg, lambda *a: None, lambda *a: None)
            assert "\n" not in str(err.value) and "tf2_ros" in str(err.value)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
