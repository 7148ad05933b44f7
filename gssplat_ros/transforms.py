"""Rigid transforms between ROS frames, ROS-free: a time-stamped transform tree and the REP 103 helpers.

Usage:
    tree = TransformTree(cache_time_ns=10_000_000_000)
    tree.set("map", "base_link", stamp_ns, base_from_map_inv)      # parent_from_child [4, 4]
    tree.set_static("base_link", "camera_link", link_mount)
    map_from_cam = tree.lookup("map", "camera_optical_frame", stamp_ns)   # target_from_source [4, 4]
    world_from_cam = optical_pose_from_body_pose(world_from_body, camera_from_body)

Semantics follow tf2: `lookup(target, source, t)` returns target_from_source, the transform that maps
points in `source` into `target`; t = 0 means the latest time every link in the chain has; dynamic links
are interpolated between stamps (linear translation, slerp rotation) and never extrapolated. Rotations
are scipy's (a well-kept implementation of quaternion slerp), quaternions xyzw as in ROS messages.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from gssplat_ros.errors import GssplatError

# REP 103: camera_link has x forward, y left, z up; the optical frame has z forward, x right, y down.
# link_from_optical's columns are the optical axes written in camera_link: x = -y_link, y = -z_link, z = x_link.
LINK_FROM_OPTICAL = np.array([
    [0.0, 0.0, 1.0, 0.0],
    [-1.0, 0.0, 0.0, 0.0],
    [0.0, -1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])
LINK_FROM_OPTICAL_QUAT_XYZW = (-0.5, 0.5, -0.5, 0.5)  # what `static_transform_publisher` is given for it


class TransformError(GssplatError):
    """Base of the lookup failures (tf2's TransformException)."""


class UnknownFrameError(TransformError):
    """A frame that the tree has never heard of (tf2's LookupException)."""


class ConnectivityError(TransformError):
    """Both frames are known but lie in different trees (tf2's ConnectivityException)."""


class ExtrapolationError(TransformError):
    """The time asked for is outside the stored history of a link (tf2's ExtrapolationException)."""


def rigid_inverse(T: np.ndarray) -> np.ndarray:
    """[4, 4] rigid transform -> its inverse (R^T, -R^T t)."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


def matrix_from_parts(translation, quat_xyzw) -> np.ndarray:
    """Translation [3] and quaternion [4] xyzw -> [4, 4]."""
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(np.asarray(quat_xyzw, dtype=np.float64)).as_matrix()
    T[:3, 3] = translation
    return T


def parts_from_matrix(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[4, 4] -> translation [3], quaternion [4] xyzw."""
    return np.asarray(T[:3, 3], dtype=np.float64).copy(), Rotation.from_matrix(T[:3, :3]).as_quat()


def optical_pose_from_body_pose(world_from_body: np.ndarray, camera_from_body: np.ndarray) -> np.ndarray:
    """Camera optical-frame pose in the world from a body pose (odometry, PoseStamped of base_link).

    Args:
        world_from_body: [4, 4] pose of the body (e.g. base_link) in the world.
        camera_from_body: [4, 4] static extrinsic mapping body points into the camera optical frame.

    Returns:
        world_from_cam [4, 4], OpenCV optical axes.
    """
    return np.asarray(world_from_body, dtype=np.float64) @ rigid_inverse(np.asarray(camera_from_body, np.float64))


def body_from_optical(body_from_link: np.ndarray) -> np.ndarray:
    """A camera_link mount on the body (URDF-style, x forward, z up) -> body_from_optical [4, 4]."""
    return np.asarray(body_from_link, dtype=np.float64) @ LINK_FROM_OPTICAL


@dataclass
class _Link:
    parent: str
    static: bool
    stamps: list = field(default_factory=list)  # sorted int ns
    translations: list = field(default_factory=list)  # [3] each
    quats: list = field(default_factory=list)  # [4] xyzw each

    def at(self, stamp_ns: int, child: str) -> np.ndarray:
        """parent_from_child [4, 4] at `stamp_ns` (0 = latest)."""
        if self.static or stamp_ns == 0:
            return matrix_from_parts(self.translations[-1], self.quats[-1])
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if i < len(self.stamps) and self.stamps[i] == stamp_ns:
            return matrix_from_parts(self.translations[i], self.quats[i])
        if i == 0 or i == len(self.stamps):
            raise ExtrapolationError(
                f"{self.parent} <- {child} at {stamp_ns * 1e-9:.3f} s would need extrapolation: "
                f"history is [{self.stamps[0] * 1e-9:.3f}, {self.stamps[-1] * 1e-9:.3f}] s")
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        w = (stamp_ns - t0) / (t1 - t0)
        trans = (1 - w) * self.translations[i - 1] + w * self.translations[i]
        rot = Slerp([0.0, 1.0], Rotation.from_quat([self.quats[i - 1], self.quats[i]]))([w])[0]
        return matrix_from_parts(trans, rot.as_quat())


class TransformTree:
    """Frames with one parent each; static links hold one transform, dynamic ones a time window. Thread-safe."""

    def __init__(self, cache_time_ns: int = 10_000_000_000):
        self.cache_time_ns = int(cache_time_ns)
        self._links: dict[str, _Link] = {}
        self._changed = threading.Condition()

    def set(self, parent: str, child: str, stamp_ns: int, parent_from_child: np.ndarray, static: bool = False) -> None:
        """Store parent_from_child [4, 4] at `stamp_ns`; a child's parent may change (the newest wins)."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child or parent == child:
            raise TransformError(f"transform {parent!r} <- {child!r} needs two different, non-empty frames")
        T = np.asarray(parent_from_child, dtype=np.float64)
        if not np.isfinite(T).all():
            raise TransformError(f"transform {parent} <- {child} has non-finite values")
        trans, quat = parts_from_matrix(T)
        with self._changed:
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static:
                link = self._links[child] = _Link(parent, static)
            if static:
                link.stamps, link.translations, link.quats = [int(stamp_ns)], [trans], [quat]
            else:
                i = bisect.bisect_left(link.stamps, int(stamp_ns))
                if i < len(link.stamps) and link.stamps[i] == int(stamp_ns):
                    link.translations[i], link.quats[i] = trans, quat
                else:
                    link.stamps.insert(i, int(stamp_ns))
                    link.translations.insert(i, trans)
                    link.quats.insert(i, quat)
                cut = bisect.bisect_left(link.stamps, link.stamps[-1] - self.cache_time_ns)
                del link.stamps[:cut], link.translations[:cut], link.quats[:cut]
            self._changed.notify_all()

    def set_static(self, parent: str, child: str, parent_from_child: np.ndarray) -> None:
        self.set(parent, child, 0, parent_from_child, static=True)

    def frames(self) -> set[str]:
        with self._changed:
            return set(self._links) | {link.parent for link in self._links.values()}

    def _path_to_root(self, frame: str) -> list[str]:
        path = [frame]
        while path[-1] in self._links:
            path.append(self._links[path[-1]].parent)
            if len(path) > 1000:
                raise TransformError(f"frame {frame!r} is in a loop of transforms")
        return path

    def _chain(self, target: str, source: str) -> tuple[list[str], list[str]]:
        """Frames from source up to the common ancestor, and from target up to it (both without it)."""
        known = set(self._links) | {link.parent for link in self._links.values()}
        for frame in (target, source):
            if frame not in known:
                raise UnknownFrameError(f'"{frame}" passed to lookup does not exist in the transform tree')
        up_source, up_target = self._path_to_root(source), self._path_to_root(target)
        common = next((f for f in up_source if f in set(up_target)), None)
        if common is None:
            raise ConnectivityError(f"{target} and {source} are not connected: two separate trees "
                                    f"(roots {up_target[-1]} and {up_source[-1]})")
        return up_source[: up_source.index(common)], up_target[: up_target.index(common)]

    def latest_common_stamp(self, target: str, source: str) -> int:
        """The newest stamp every dynamic link between the frames has (0 when all links are static)."""
        with self._changed:
            below_source, below_target = self._chain(target.lstrip("/"), source.lstrip("/"))
            newest = [self._links[f].stamps[-1] for f in below_source + below_target if not self._links[f].static]
            return min(newest) if newest else 0

    def lookup(self, target: str, source: str, stamp_ns: int = 0) -> np.ndarray:
        """target_from_source [4, 4] at `stamp_ns` (0 = latest common time). Raises a TransformError subclass."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        with self._changed:
            below_source, below_target = self._chain(target, source)
            if stamp_ns == 0:
                stamp_ns = self.latest_common_stamp(target, source)
            common_from_source = np.eye(4)
            for frame in reversed(below_source):  # multiply root-most first: common <- ... <- source
                common_from_source = common_from_source @ self._links[frame].at(stamp_ns, frame)
            common_from_target = np.eye(4)
            for frame in reversed(below_target):
                common_from_target = common_from_target @ self._links[frame].at(stamp_ns, frame)
            return rigid_inverse(common_from_target) @ common_from_source

    def can_lookup(self, target: str, source: str, stamp_ns: int = 0) -> bool:
        try:
            self.lookup(target, source, stamp_ns)
            return True
        except TransformError:
            return False

    def wait_for(self, target: str, source: str, stamp_ns: int, timeout_s: float) -> bool:
        """Block until the lookup can succeed or `timeout_s` passes (new transforms wake it)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.can_lookup(target, source, stamp_ns), timeout=max(0.0, timeout_s))


EXTRINSIC_FROM_TF = "tf"


def parse_extrinsic(text: str):
    """An extrinsic parameter -> [4, 4] matrix, EXTRINSIC_FROM_TF ("tf"), or None (empty: not set).

    Args:
        text: 'x y z qx qy qz qw' (metres, quaternion xyzw as static_transform_publisher takes it; commas
            allowed), 'tf', or empty.

    Raises:
        ValueError: not 7 finite numbers, or a quaternion that is not unit length.
    """
    text = (text or "").strip()
    if not text:
        return None
    if text.lower() == EXTRINSIC_FROM_TF:
        return EXTRINSIC_FROM_TF
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"{text!r} is not 'x y z qx qy qz qw', 'tf' or empty") from None
    if len(values) != 7 or not np.isfinite(values).all():
        raise ValueError(f"needs 7 finite numbers 'x y z qx qy qz qw', got {text!r}")
    norm = float(np.linalg.norm(values[3:]))
    if abs(norm - 1.0) > 1e-2:
        raise ValueError(f"quaternion (qx qy qz qw) must be unit length, |q| = {norm:.4g}")
    return matrix_from_parts(values[:3], np.asarray(values[3:]) / norm)
