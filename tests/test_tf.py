"""TF: the ROS-free transform tree and the tf2_ros-shaped buffer (chains, interpolation, static +
dynamic, extrapolation), and the REP 103 optical-frame helpers."""

import threading

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from gssplat_ros import transforms
from gssplat_ros.transforms import LINK_FROM_OPTICAL, TransformTree, optical_pose_from_body_pose

S = 1_000_000_000  # ns per second


def pose(xyz, rotvec=(0.0, 0.0, 0.0)) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = xyz
    return T


def robot_tree() -> TransformTree:
    """map -> odom (static) -> base_link (moving) -> camera_link (static) -> camera_optical_frame (static)."""
    tree = TransformTree()
    tree.set_static("map", "odom", pose([1.0, 0.0, 0.0]))
    tree.set("odom", "base_link", 10 * S, pose([0.0, 0.0, 0.0]))
    tree.set("odom", "base_link", 12 * S, pose([2.0, 0.0, 0.0], [0.0, 0.0, np.pi / 2]))
    tree.set_static("base_link", "camera_link", pose([0.1, 0.0, 0.5]))
    tree.set_static("camera_link", "camera_optical_frame", LINK_FROM_OPTICAL)
    return tree


def test_chain_interpolates_translation_linearly_and_rotation_by_slerp():
    tree = robot_tree()
    got = tree.lookup("map", "camera_optical_frame", 11 * S)
    # Halfway: base_link at x = 1 in odom, yawed 45 degrees; then the static camera mount.
    expected = pose([1.0, 0.0, 0.0]) @ pose([1.0, 0.0, 0.0], [0, 0, np.pi / 4]) @ pose([0.1, 0, 0.5]) @ LINK_FROM_OPTICAL
    assert np.allclose(got, expected, atol=1e-9)
    # The inverse lookup is the rigid inverse; a sibling-to-sibling lookup goes through the common parent.
    assert np.allclose(tree.lookup("camera_optical_frame", "map", 11 * S), transforms.rigid_inverse(expected))
    assert np.allclose(tree.lookup("odom", "odom", 11 * S), np.eye(4))


def test_time_zero_is_the_latest_common_time_and_extrapolation_raises():
    tree = robot_tree()
    assert tree.latest_common_stamp("map", "camera_optical_frame") == 12 * S
    assert np.allclose(tree.lookup("map", "base_link", 0)[:3, 3], [3.0, 0.0, 0.0])
    for stamp in (9 * S, 12 * S + 1):
        with pytest.raises(transforms.ExtrapolationError):
            tree.lookup("map", "camera_optical_frame", stamp)
    # Static-only chains answer at any time.
    assert np.allclose(tree.lookup("base_link", "camera_optical_frame", 99 * S)[:3, 3], [0.1, 0.0, 0.5])


def test_unknown_and_disconnected_frames():
    tree = robot_tree()
    tree.set_static("world", "satellite", pose([0, 0, 100.0]))
    with pytest.raises(transforms.UnknownFrameError):
        tree.lookup("map", "lidar", 11 * S)
    with pytest.raises(transforms.ConnectivityError):
        tree.lookup("map", "satellite", 0)


def test_history_window_drops_old_stamps():
    tree = TransformTree(cache_time_ns=5 * S)
    for t in range(0, 20):
        tree.set("odom", "base_link", t * S, pose([float(t), 0, 0]))
    assert np.allclose(tree.lookup("odom", "base_link", 17 * S + S // 2)[:3, 3], [17.5, 0, 0])
    with pytest.raises(transforms.ExtrapolationError):
        tree.lookup("odom", "base_link", 10 * S)


def test_rep103_optical_frame_axes():
    # Optical z (forward) is camera_link's x; optical x (right) is -y (y points left); optical y (down) is -z.
    assert np.allclose(LINK_FROM_OPTICAL[:3, 2], [1, 0, 0])
    assert np.allclose(LINK_FROM_OPTICAL[:3, 0], [0, -1, 0])
    assert np.allclose(LINK_FROM_OPTICAL[:3, 1], [0, 0, -1])
    quat = Rotation.from_matrix(LINK_FROM_OPTICAL[:3, :3]).as_quat()
    assert np.allclose(quat, transforms.LINK_FROM_OPTICAL_QUAT_XYZW) or np.allclose(
        -quat, transforms.LINK_FROM_OPTICAL_QUAT_XYZW)


def test_optical_pose_from_odometry_of_the_body():
    # A robot at (2, 1) facing +y (yaw 90 degrees), camera 0.5 m up looking forward.
    world_from_body = pose([2.0, 1.0, 0.0], [0, 0, np.pi / 2])
    body_from_optical = transforms.body_from_optical(pose([0.0, 0.0, 0.5]))
    world_from_cam = optical_pose_from_body_pose(world_from_body, transforms.rigid_inverse(body_from_optical))
    assert np.allclose(world_from_cam[:3, 3], [2.0, 1.0, 0.5])
    assert np.allclose(world_from_cam[:3, 2], [0, 1, 0])  # optical z looks along the robot's heading, +y
    assert np.allclose(world_from_cam[:3, 1], [0, 0, -1])  # image down is world down


# ------------------------------------------------------------------ the tf2_ros-shaped buffer
tf = pytest.importorskip("gssplat_ros.ros.tf")


def stamped(parent, child, stamp_ns, T):
    return tf.matrix_to_transform_stamped(T, parent, child, stamp_ns)


def test_buffer_has_tf2_interface_and_exception_names():
    from rclpy.duration import Duration
    from rclpy.time import Time

    buf = tf.TfBuffer()
    assert buf.set_transform_static(stamped("map", "odom", 0, pose([1.0, 0, 0])), "test")
    assert buf.set_transform(stamped("odom", "base_link", 10 * S, pose([0.0, 0, 0])), "test")
    assert buf.set_transform(stamped("odom", "base_link", 12 * S, pose([2.0, 0, 0])), "test")
    t = buf.lookup_transform("map", "base_link", Time(nanoseconds=11 * S), Duration(seconds=0))
    assert (t.header.frame_id, t.child_frame_id) == ("map", "base_link")
    assert np.allclose(tf.transform_to_matrix(t.transform)[:3, 3], [2.0, 0, 0])
    assert tf.time_to_ns(t.header.stamp) == 11 * S
    latest = buf.lookup_transform("map", "base_link", Time())
    assert tf.time_to_ns(latest.header.stamp) == 12 * S
    assert buf.can_transform("map", "base_link", Time(nanoseconds=11 * S))
    assert not buf.can_transform("map", "base_link", Time(nanoseconds=13 * S))
    with pytest.raises(tf.ExtrapolationException):
        buf.lookup_transform("map", "base_link", Time(nanoseconds=13 * S))
    with pytest.raises(tf.LookupException):
        buf.lookup_transform("map", "camera", Time())
    assert issubclass(tf.ExtrapolationException, tf.TransformException)
    # A malformed transform is refused, not stored.
    assert not buf.set_transform(stamped("odom", "odom", 13 * S, np.eye(4)), "test")


def test_buffer_timeout_waits_for_a_transform_that_arrives():
    from rclpy.duration import Duration
    from rclpy.time import Time

    buf = tf.TfBuffer()
    buf.set_transform(stamped("odom", "base_link", 10 * S, pose([0.0, 0, 0])), "test")
    later = threading.Timer(0.05, lambda: buf.set_transform(stamped("odom", "base_link", 12 * S, pose([2.0, 0, 0])),
                                                          "test"))
    later.start()
    t = buf.lookup_transform("odom", "base_link", Time(nanoseconds=11 * S), Duration(seconds=5.0))
    later.join()
    assert np.allclose(tf.transform_to_matrix(t.transform)[:3, 3], [1.0, 0, 0])
    assert not buf.can_transform("odom", "base_link", Time(nanoseconds=20 * S), Duration(seconds=0.05))


def test_make_buffer_and_listener_on_this_install():
    buf = tf.make_buffer()
    if tf.HAVE_TF2_ROS:
        assert type(buf).__name__ == "Buffer"
    else:
        assert isinstance(buf, tf.TfBuffer)
        with pytest.raises(tf.TfUnavailable, match="tf2_ros"):
            tf.make_listener(buf, node=None)
