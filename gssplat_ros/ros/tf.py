"""TF (REP 105) for the node: tf2_ros when the ROS install has it, otherwise a buffer with its interface.

Usage:
    buffer = make_buffer(cache_time_s=10.0)             # tf2_ros.Buffer, or TfBuffer on a pip-only install
    buffer.set_transform(transform_stamped, "bag")      # what a TF listener does for each /tf message
    t = buffer.lookup_transform("map", "camera_optical_frame", image_stamp, Duration(seconds=0.05))
    world_from_cam = transform_to_matrix(t.transform)   # [4, 4]

TfBuffer implements the subset of tf2_ros.Buffer the node uses: set_transform, set_transform_static,
lookup_transform and can_transform, with tf2's semantics and exception names (LookupException,
ConnectivityException, ExtrapolationException, all TransformException), on top of the ROS-free
`gssplat_ros.transforms.TransformTree`. Exceptions here are tf2_ros's own when tf2_ros is importable,
so callers catch one set of names either way.

Listening to /tf and /tf_static needs tf2_msgs/TFMessage, which has no pip wheel for Jazzy (checked
with `pip index versions ros-jazzy-tf2-msgs`): on a ROS install `make_listener` returns tf2_ros's
TransformListener; on a pip-only install it raises TfUnavailable, and the node keeps to pose topics.
"""

from __future__ import annotations

import numpy as np

from gssplat_ros import transforms
from gssplat_ros.ros.conversions import ns_to_stamp, stamp_to_ns

try:
    import tf2_ros

    HAVE_TF2_ROS = True
    TransformException = tf2_ros.TransformException
    LookupException = tf2_ros.LookupException
    ConnectivityException = tf2_ros.ConnectivityException
    ExtrapolationException = tf2_ros.ExtrapolationException
except ImportError:
    tf2_ros = None
    HAVE_TF2_ROS = False

    class TransformException(Exception):  # noqa: N818 -- tf2_ros's names, so callers need not care which
        """Base of TF lookup failures."""

    class LookupException(TransformException):  # noqa: N818
        """A frame the buffer has never received."""

    class ConnectivityException(TransformException):  # noqa: N818
        """Frames in two separate trees."""

    class ExtrapolationException(TransformException):  # noqa: N818
        """A time outside a transform's stored history."""


_EXCEPTIONS = {
    transforms.UnknownFrameError: LookupException,
    transforms.ConnectivityError: ConnectivityException,
    transforms.ExtrapolationError: ExtrapolationException,
}


class TfUnavailable(RuntimeError):
    """TF cannot be listened to on this install (no tf2_ros, no tf2_msgs)."""


def time_to_ns(time) -> int:
    """rclpy.time.Time, builtin_interfaces/Time, or int ns -> int ns (0 means 'latest')."""
    if hasattr(time, "nanoseconds"):
        return int(time.nanoseconds)
    if hasattr(time, "sec"):
        return stamp_to_ns(time)
    return int(time or 0)


def duration_to_s(duration) -> float:
    if duration is None:
        return 0.0
    if hasattr(duration, "nanoseconds"):
        return duration.nanoseconds * 1e-9
    if hasattr(duration, "sec"):
        return duration.sec + duration.nanosec * 1e-9
    return float(duration)


def transform_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> [4, 4] parent_from_child."""
    t, q = transform.translation, transform.rotation
    return transforms.matrix_from_parts([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def matrix_to_transform_stamped(parent_from_child: np.ndarray, parent: str, child: str, stamp_ns: int):
    """[4, 4] -> geometry_msgs/TransformStamped (header.frame_id = parent, child_frame_id = child)."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp = ns_to_stamp(stamp_ns)
    trans, quat = transforms.parts_from_matrix(np.asarray(parent_from_child, dtype=np.float64))
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in trans)
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in quat)
    return msg


class TfBuffer:
    """tf2_ros.Buffer's interface subset over a TransformTree (see the module docstring)."""

    def __init__(self, cache_time=None):
        cache_s = duration_to_s(cache_time) if cache_time is not None else 10.0
        self.tree = transforms.TransformTree(cache_time_ns=int(cache_s * 1e9))

    def set_transform(self, transform, authority: str) -> bool:
        """Store a TransformStamped (parent = header.frame_id, child = child_frame_id); False if unusable."""
        return self._set(transform, static=False)

    def set_transform_static(self, transform, authority: str) -> bool:
        return self._set(transform, static=True)

    def _set(self, transform, static: bool) -> bool:
        try:
            self.tree.set(transform.header.frame_id, transform.child_frame_id, stamp_to_ns(transform.header.stamp),
                          transform_to_matrix(transform.transform), static=static)
            return True
        except (transforms.TransformError, ValueError):
            return False

    def lookup_transform(self, target_frame: str, source_frame: str, time, timeout=None):
        """TransformStamped target <- source at `time` (0 = latest), waiting up to `timeout` for data."""
        stamp_ns = time_to_ns(time)
        wait_s = duration_to_s(timeout)
        if wait_s > 0:
            self.tree.wait_for(target_frame, source_frame, stamp_ns, wait_s)
        try:
            if stamp_ns == 0:
                stamp_ns = self.tree.latest_common_stamp(target_frame, source_frame)
            matrix = self.tree.lookup(target_frame, source_frame, stamp_ns)
        except transforms.TransformError as exc:
            raise _EXCEPTIONS.get(type(exc), TransformException)(str(exc)) from None
        return matrix_to_transform_stamped(matrix, target_frame, source_frame, stamp_ns)

    def can_transform(self, target_frame: str, source_frame: str, time, timeout=None) -> bool:
        stamp_ns = time_to_ns(time)
        wait_s = duration_to_s(timeout)
        if wait_s > 0:
            return self.tree.wait_for(target_frame, source_frame, stamp_ns, wait_s)
        return self.tree.can_lookup(target_frame, source_frame, stamp_ns)


def make_buffer(cache_time_s: float = 10.0, node=None):
    """tf2_ros.Buffer when the install has it, else TfBuffer (same calls, same exception names)."""
    if HAVE_TF2_ROS:
        from rclpy.duration import Duration

        return tf2_ros.Buffer(cache_time=Duration(seconds=cache_time_s), node=node)
    return TfBuffer(cache_time=cache_time_s)


def make_listener(buffer, node):
    """Fill `buffer` from /tf and /tf_static: tf2_ros's TransformListener; TfUnavailable without tf2_ros.

    A listener of our own would need tf2_msgs/TFMessage, which pip-only installs lack (no wheel), so
    there is no fallback subscriber: the node reports pose_source tf as unavailable and uses pose topics.
    """
    if HAVE_TF2_ROS:
        return tf2_ros.TransformListener(buffer, node, spin_thread=False)
    raise TfUnavailable("TF needs tf2_ros (apt install ros-${ROS_DISTRO}-tf2-ros); this install has no tf2_ros "
                        "and no tf2_msgs, so poses must come from the pose/odom topics")
