"""Build and decode ROS messages as rosbags typestore objects (no rclpy): the offline bag path.

Usage:
    msg = image_msg(rgb, stamp_ns, "camera_optical")           # sensor_msgs/msg/Image, rgb8
    data = serialize(msg)                                      # CDR bytes for a rosbag2 writer
    rgb = image_from_msg(deserialize(data, IMAGE))             # [H, W, 3] uint8 RGB

The node's rclpy conversions live in gssplat_ros/ros/conversions.py; both follow the same conventions
(OpenCV optical frames, camera-to-world poses, quaternions xyzw in messages and wxyz in the core).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from gssplat_ros.cloud_layout import CLOUD_FIELDS, POINT_STEP
from gssplat_ros.errors import DataError

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
CLOCK = "rosgraph_msgs/msg/Clock"


@lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Jazzy message definitions (identical to Humble's for every type used here)."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def _t(name: str):
    return typestore().types[name]


def serialize(msg) -> bytes:
    return bytes(typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(data: bytes, msgtype: str):
    return typestore().deserialize_cdr(data, msgtype)


# ----------------------------------------------------------------- time, header
def stamp_msg(stamp_ns: int):
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return _t("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def stamp_ns_of(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def header_msg(stamp_ns: int, frame_id: str):
    return _t("std_msgs/msg/Header")(stamp=stamp_msg(stamp_ns), frame_id=frame_id)


# ----------------------------------------------------------------- rotations
def quat_xyzw_from_matrix(rot: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] -> unit quaternion [4] xyzw (ROS order), w >= 0."""
    m = np.asarray(rot, dtype=np.float64)
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0.0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def matrix_from_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """Quaternion [4] xyzw (normalised here) -> rotation matrix [3, 3]."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


# ----------------------------------------------------------------- builders
def image_msg(array: np.ndarray, stamp_ns: int, frame_id: str, encoding: str | None = None):
    """numpy image -> sensor_msgs/msg/Image (little-endian).

    Args:
        array: [H, W, 3] uint8 RGB (rgb8), [H, W] uint8 (mono8), [H, W] uint16 (16UC1) or
            [H, W] float32 (32FC1).
        encoding: overrides the encoding picked from the dtype and shape.
    """
    a = np.ascontiguousarray(array)
    if encoding is None:
        if a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8:
            encoding = "rgb8"
        elif a.ndim == 2 and a.dtype == np.uint8:
            encoding = "mono8"
        elif a.ndim == 2 and a.dtype == np.uint16:
            encoding = "16UC1"
        elif a.ndim == 2 and a.dtype == np.float32:
            encoding = "32FC1"
        else:
            raise ValueError(f"no image encoding for an array of shape {a.shape} and dtype {a.dtype}")
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    h, w = a.shape[:2]
    return _t(IMAGE)(
        header=header_msg(stamp_ns, frame_id),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=a.strides[0],
        data=np.frombuffer(a.tobytes(), dtype=np.uint8),
    )


def camera_info_msg(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    """Pinhole intrinsics [3, 3] (pixels) -> sensor_msgs/msg/CameraInfo, no distortion (plumb_bob, zeros)."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    return _t(CAMERA_INFO)(
        header=header_msg(stamp_ns, frame_id),
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=K.reshape(-1).copy(),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=_t("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def _pose(world_from_cam: np.ndarray):
    m = np.asarray(world_from_cam, dtype=np.float64)
    q = quat_xyzw_from_matrix(m[:3, :3])
    position = _t("geometry_msgs/msg/Point")(x=float(m[0, 3]), y=float(m[1, 3]), z=float(m[2, 3]))
    orientation = _t("geometry_msgs/msg/Quaternion")(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
    return position, orientation


def pose_stamped_msg(world_from_cam: np.ndarray, stamp_ns: int, world_frame: str):
    """Camera-to-world [4, 4] -> geometry_msgs/msg/PoseStamped (the optical frame's pose in `world_frame`)."""
    position, orientation = _pose(world_from_cam)
    return _t(POSE_STAMPED)(
        header=header_msg(stamp_ns, world_frame),
        pose=_t("geometry_msgs/msg/Pose")(position=position, orientation=orientation),
    )


def tf_msg(world_from_cam: np.ndarray, stamp_ns: int, world_frame: str, child_frame: str):
    """Camera-to-world [4, 4] -> tf2_msgs/msg/TFMessage with one world -> camera transform."""
    position, rotation = _pose(world_from_cam)
    translation = _t("geometry_msgs/msg/Vector3")(x=position.x, y=position.y, z=position.z)
    tfs = _t("geometry_msgs/msg/TransformStamped")(
        header=header_msg(stamp_ns, world_frame),
        child_frame_id=child_frame,
        transform=_t("geometry_msgs/msg/Transform")(translation=translation, rotation=rotation),
    )
    return _t(TF_MESSAGE)(transforms=[tfs])


def point_cloud2_msg(cloud: np.ndarray, stamp_ns: int, frame_id: str):
    """Structured array of gssplat_ros.cloud_layout.CLOUD_DTYPE -> unorganised sensor_msgs/msg/PointCloud2."""
    field = _t("sensor_msgs/msg/PointField")
    n = int(len(cloud))
    return _t(POINT_CLOUD2)(
        header=header_msg(stamp_ns, frame_id),
        height=1,
        width=n,
        fields=[field(name=name, offset=off, datatype=dt, count=cnt) for name, off, dt, cnt in CLOUD_FIELDS],
        is_bigendian=False,
        point_step=POINT_STEP,
        row_step=POINT_STEP * n,
        data=np.frombuffer(cloud.tobytes(), dtype=np.uint8),
        is_dense=True,
    )


def clock_msg(stamp_ns: int):
    return _t(CLOCK)(clock=stamp_msg(stamp_ns))


# ----------------------------------------------------------------- decoders
def _pixels(msg, dtype: np.dtype, channels: int) -> np.ndarray:
    h, w = int(msg.height), int(msg.width)
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    row_bytes = w * channels * dtype.itemsize
    step = int(msg.step) or row_bytes
    raw = np.asarray(msg.data, dtype=np.uint8)
    if step < row_bytes or raw.size < step * (h - 1) + row_bytes:
        raise DataError(f"{msg.encoding} image {w}x{h} has {raw.size} bytes with step {step}: too short")
    if raw.size < step * h:  # the last row may be unpadded
        raw = np.concatenate([raw, np.zeros(step * h - raw.size, np.uint8)])
    rows = raw[: step * h].reshape(h, step)[:, :row_bytes].copy()  # a writable copy, not a view of the message
    out = rows.view(dtype).reshape((h, w, channels) if channels > 1 else (h, w))
    return out.astype(dtype.newbyteorder("="), copy=False)


def image_from_msg(msg) -> np.ndarray:
    """sensor_msgs/msg/Image (rgb8, bgr8, rgba8, bgra8, mono8) -> [H, W, 3] uint8 RGB."""
    enc = msg.encoding.lower()
    if enc in ("rgb8", "bgr8"):
        a = _pixels(msg, np.uint8, 3)
        return a if enc == "rgb8" else np.ascontiguousarray(a[..., ::-1])
    if enc in ("rgba8", "bgra8"):
        a = _pixels(msg, np.uint8, 4)
        return np.ascontiguousarray(a[..., :3] if enc == "rgba8" else a[..., 2::-1])
    if enc in ("mono8", "8uc1"):
        return np.repeat(_pixels(msg, np.uint8, 1)[..., None], 3, axis=-1)
    raise DataError(f"unsupported colour image encoding {msg.encoding!r} (rgb8, bgr8, rgba8, bgra8, mono8)")


def depth_from_msg(msg) -> np.ndarray:
    """sensor_msgs/msg/Image (32FC1 metres, or 16UC1 / mono16 millimetres) -> [H, W] float32 metres, 0 invalid."""
    enc = msg.encoding.upper()
    if enc == "32FC1":
        d = _pixels(msg, np.float32, 1).astype(np.float32)
        return np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    if enc in ("16UC1", "MONO16"):
        return _pixels(msg, np.uint16, 1).astype(np.float32) / 1000.0
    raise DataError(f"unsupported depth encoding {msg.encoding!r} (32FC1 metres, 16UC1 millimetres)")


def K_from_camera_info(msg) -> np.ndarray:
    K = np.array(msg.k, dtype=np.float64).reshape(3, 3)  # a writable copy
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise DataError("camera_info has no valid intrinsics (K must be finite with fx, fy > 0)")
    return K


def matrix_from_pose_msg(pose) -> np.ndarray:
    """geometry_msgs/msg/Pose -> [4, 4] float64 (camera-to-world when it is the camera's pose)."""
    q = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w], np.float64)
    m = np.eye(4)
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-9:
        m[:] = np.nan
        return m
    m[:3, :3] = matrix_from_quat_xyzw(q)
    m[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
    return m
