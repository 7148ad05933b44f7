"""Pure conversions between rclpy messages and the core's numpy / Gaussians types (no node needed).

Usage:
    rgb = image_to_numpy(msg)                          # [H, W, 3] uint8 from rgb8/bgr8/rgba8/bgra8/mono8
    rgb = color_image(msg)                             # also mono16, yuv422 (UYVY/YUY2), bayer_*8
    rgb = compressed_color_image(msg)                  # sensor_msgs/CompressedImage jpeg/png
    depth_m = compressed_depth_image(msg)              # CompressedImage "16UC1; compressedDepth png" / 32FC1
    rect = camera_rectifier(info_msg)                  # camera_models.Rectifier for the CameraInfo's K, D, R, P
    world_from_cam = pose_msg_to_matrix(msg.pose)      # [4, 4], raises ConversionError for bad quaternions
    cloud = gaussians_to_cloud_msg(g, header)          # sensor_msgs/PointCloud2 (cloud_layout fields)

Quaternions are xyzw in ROS messages and wxyz in the core: this module is where they are converted.
Decoding of image bytes is shared with the offline bag tools (`gssplat_ros.bags.msgs`), which work on
any object with the message's fields; cv_bridge is used when a ROS install provides it.
"""

from __future__ import annotations

import numpy as np

from gssplat_ros import image_codecs
from gssplat_ros.bags import msgs as field_codec
from gssplat_ros.camera_models import CameraModel, CameraModelError, Rectifier, rectifier_for
from gssplat_ros.cloud_layout import CLOUD_FIELDS, POINT_STEP, gaussians_to_cloud_array
from gssplat_ros.errors import DataError
from gssplat_ros.gaussians import Gaussians

try:  # a real ROS install: prefer cv_bridge for decoding (same results for these encodings)
    from cv_bridge import CvBridge

    _BRIDGE = CvBridge()
except ImportError:  # pip-only install: our own decoder
    _BRIDGE = None

QUAT_NORM_TOLERANCE = 1e-2  # |q| must be within 1 +- this; anything else is a broken pose source


class ConversionError(ValueError):
    """A message that cannot be used; `reason` is the diagnostics key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000))


# ----------------------------------------------------------------- images
def image_to_numpy(msg) -> np.ndarray:
    """sensor_msgs/Image -> numpy: colour encodings to [H, W, 3] uint8 RGB, 32FC1/16UC1 to float32 metres.

    mono8 renders (semantic ids) come back as [H, W] uint8.
    """
    enc = msg.encoding.lower()
    try:
        if enc in ("32fc1", "16uc1", "mono16"):
            return field_codec.depth_from_msg(msg)
        if enc == "mono8":
            return field_codec.image_from_msg(msg)[..., 0]
        if _BRIDGE is not None and enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
            return np.ascontiguousarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
        return field_codec.image_from_msg(msg)
    except DataError as exc:
        reason = "bad_encoding" if "unsupported" in str(exc) else "bad_image_size"
        raise ConversionError(reason, str(exc)) from None


def color_image(msg) -> np.ndarray:
    """Colour input -> [H, W, 3] uint8 RGB (mono replicated; Bayer demosaiced; YUV converted).

    Encodings: image_codecs.COLOR_ENCODINGS. Raises ConversionError (bad_encoding, bad_image_size).
    """
    try:
        return image_codecs.decode_color(msg)
    except image_codecs.ImageDecodeError as exc:
        raise ConversionError(exc.reason, str(exc)) from None


def compressed_color_image(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg/png, image_transport `compressed`) -> [H, W, 3] uint8 RGB.

    Raises ConversionError with reason bad_compressed (data that does not decode) or bad_encoding.
    """
    try:
        return image_codecs.decode_compressed_color(msg)
    except image_codecs.ImageDecodeError as exc:
        raise ConversionError(exc.reason, str(exc)) from None


def compressed_depth_image(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (image_transport `compressedDepth`, png) -> [H, W] float32 metres, 0 invalid."""
    try:
        return image_codecs.decode_compressed_depth(msg)
    except image_codecs.ImageDecodeError as exc:
        raise ConversionError(exc.reason, str(exc)) from None


def depth_image(msg) -> np.ndarray:
    """Depth input (32FC1 metres or 16UC1 millimetres) -> [H, W] float32 metres, 0 = invalid."""
    try:
        return field_codec.depth_from_msg(msg)
    except DataError as exc:
        reason = "bad_depth_encoding" if "unsupported" in str(exc) else "bad_depth_size"
        raise ConversionError(reason, str(exc)) from None


def numpy_to_image(array: np.ndarray, header, encoding: str):
    """[H, W, 3] uint8 (rgb8), [H, W] uint8 (mono8) or [H, W] float32 (32FC1) -> sensor_msgs/Image."""
    from sensor_msgs.msg import Image

    array = np.ascontiguousarray(array)
    msg = Image(header=header, height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0)
    msg.step = array.strides[0]
    msg.data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return msg


# ----------------------------------------------------------------- camera
def camera_info_to_K(msg, image_width: int, image_height: int) -> np.ndarray:
    """Validated [3, 3] intrinsics for an image of the given size."""
    if (int(msg.width), int(msg.height)) != (image_width, image_height):
        raise ConversionError(
            "size_mismatch", f"camera_info is {msg.width}x{msg.height} but the image is {image_width}x{image_height}"
        )
    K = np.array(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ConversionError("bad_intrinsics", "camera_info K must be finite with fx, fy > 0")
    return K


def camera_rectifier(msg, rectified_input: bool = False) -> Rectifier:
    """sensor_msgs/CameraInfo -> the cached Rectifier of its full model (K, D, R, P; see camera_models).

    Raises ConversionError with reason unknown_distortion_model, bad_distortion, bad_intrinsics or
    bad_camera_info.
    """
    try:
        return rectifier_for(CameraModel.from_camera_info(msg), rectified_input)
    except CameraModelError as exc:
        raise ConversionError(exc.reason, str(exc)) from None


def camera_info_msg(K: np.ndarray, width: int, height: int, header):
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo(header=header, width=int(width), height=int(height), distortion_model="plumb_bob")
    msg.k = [float(v) for v in np.asarray(K, dtype=np.float64).reshape(-1)]
    msg.d = [0.0] * 5
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = K
    msg.p = [float(v) for v in p.reshape(-1)]
    return msg


# ----------------------------------------------------------------- poses
def pose_msg_to_matrix(pose) -> np.ndarray:
    """geometry_msgs/Pose (camera optical frame in the world) -> world_from_cam [4, 4].

    Raises ConversionError for non-finite values or a quaternion whose norm is not ~1.
    """
    p, q = pose.position, pose.orientation
    xyzw = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    xyz = np.array([p.x, p.y, p.z], dtype=np.float64)
    if not (np.isfinite(xyzw).all() and np.isfinite(xyz).all()):
        raise ConversionError("bad_pose", "pose has non-finite values")
    norm = np.linalg.norm(xyzw)
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise ConversionError("bad_pose", f"pose quaternion is not unit length (|q| = {norm:.4g})")
    m = np.eye(4)
    m[:3, :3] = field_codec.matrix_from_quat_xyzw(xyzw)
    m[:3, 3] = xyz
    return m


def matrix_to_pose_msg(world_from_cam: np.ndarray):
    from geometry_msgs.msg import Pose

    m = np.asarray(world_from_cam, dtype=np.float64)
    x, y, z, w = field_codec.quat_xyzw_from_matrix(m[:3, :3])
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in m[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = float(x), float(y), float(z), float(w)
    return pose


def pose_to_msg(world_from_cam: np.ndarray, stamp_ns: int, frame_id: str):
    """world_from_cam [4, 4] -> geometry_msgs/PoseStamped."""
    from geometry_msgs.msg import PoseStamped
    from std_msgs.msg import Header

    return PoseStamped(header=Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id), pose=matrix_to_pose_msg(world_from_cam))


# ----------------------------------------------------------------- clouds
def gaussians_to_cloud_msg(gaussians: Gaussians, header, min_opacity: float = 0.0):
    """Gaussians -> unorganised little-endian PointCloud2 with the fields of `cloud_layout`."""
    return cloud_array_to_msg(gaussians_to_cloud_array(gaussians, min_opacity), header)


def cloud_array_to_msg(arr: np.ndarray, header):
    """A CLOUD_DTYPE structured array -> unorganised little-endian PointCloud2 with `cloud_layout`'s fields."""
    from sensor_msgs.msg import PointCloud2, PointField

    msg = PointCloud2(header=header, height=1, width=len(arr), is_bigendian=False, is_dense=True)
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in CLOUD_FIELDS]
    msg.point_step = POINT_STEP
    msg.row_step = POINT_STEP * len(arr)
    msg.data = arr.tobytes()
    return msg


def colorize_labels(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """[H, W] uint8 ids (255 = unlabeled, black) -> [H, W, 3] uint8 with palette [C, 3]."""
    lut = np.zeros((256, 3), np.uint8)
    n = min(len(palette), 255)
    lut[:n] = palette[:n]
    return lut[labels]
