"""Decoders for the image encodings robots publish beyond rgb8: raw Bayer, YUV 4:2:2, 16-bit mono, and
`sensor_msgs/CompressedImage` as image_transport's compressed and compressedDepth plugins write it.

Usage:
    rgb = decode_color(msg)                 # Image (rgb8/bgr8/rgba8/bgra8/mono8/mono16/yuv422/bayer_*8) -> [H, W, 3] uint8
    rgb = decode_compressed_color(msg)      # CompressedImage jpeg/png -> [H, W, 3] uint8 RGB
    depth_m = decode_compressed_depth(msg)  # CompressedImage "16UC1; compressedDepth png" / 32FC1 -> [H, W] float32 m

Messages are any objects with the fields of the ROS messages (rclpy or rosbags). Every failure raises
ImageDecodeError with a `reason` the node counts. OpenCV does the pixel work (demosaicing, YUV, codecs).
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from gssplat_ros.bags import msgs as field_codec
from gssplat_ros.errors import DataError

# sensor_msgs/image_encodings names -> OpenCV conversion to RGB. OpenCV names a Bayer pattern after the
# second row's first two pixels, so ROS's rggb is OpenCV's BG (the mapping cv_bridge uses).
BAYER_TO_RGB = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}
YUV422_TO_RGB = {
    "yuv422": cv2.COLOR_YUV2RGB_UYVY,  # ROS's "yuv422" is UYVY byte order
    "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUYV,
    "yuyv": cv2.COLOR_YUV2RGB_YUYV,
}
BASE_COLOR = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8uc1")
COLOR_ENCODINGS = BASE_COLOR + ("mono16",) + tuple(BAYER_TO_RGB) + tuple(YUV422_TO_RGB)
# compressed_depth_image_transport prefixes the PNG with its ConfigHeader: int32 format, float32 quant A, B.
DEPTH_HEADER = struct.Struct("<iff")


class ImageDecodeError(DataError, ValueError):
    """An image that cannot be decoded; `reason` is the diagnostics key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def decode_color(msg) -> np.ndarray:
    """sensor_msgs/Image in any encoding of COLOR_ENCODINGS -> [H, W, 3] uint8 RGB."""
    enc = msg.encoding.lower()
    try:
        if enc in BASE_COLOR:
            return field_codec.image_from_msg(msg)
        if enc == "mono16":
            mono = (field_codec._pixels(msg, np.uint16, 1) >> 8).astype(np.uint8)  # keep the top 8 bits
            return np.repeat(mono[..., None], 3, axis=-1)
        if enc in BAYER_TO_RGB:
            return cv2.cvtColor(field_codec._pixels(msg, np.uint8, 1), BAYER_TO_RGB[enc])
        if enc in YUV422_TO_RGB:
            return cv2.cvtColor(field_codec._pixels(msg, np.uint8, 2), YUV422_TO_RGB[enc])
    except DataError as exc:
        raise ImageDecodeError("bad_image_size", str(exc)) from None
    raise ImageDecodeError(
        "bad_encoding", f"unsupported image encoding {msg.encoding!r} (use one of {', '.join(COLOR_ENCODINGS)})")


def _imdecode(data, what: str) -> np.ndarray:
    buf = np.frombuffer(bytes(data), np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise ImageDecodeError("bad_compressed", f"{what}: {buf.size} bytes do not decode as an image")
    return image


def decode_compressed_color(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png) -> [H, W, 3] uint8 RGB.

    `format` is "jpeg"/"png" (older publishers: bytes in OpenCV's BGR order) or image_transport's
    "<encoding>; <jpeg|png> compressed <bgr8|rgb8|...>", whose last word says the byte order encoded.
    """
    fmt = msg.format.lower()
    if "compresseddepth" in fmt:
        raise ImageDecodeError("bad_encoding", f"format {msg.format!r} is depth; subscribe it as depth")
    image = _imdecode(msg.data, f"CompressedImage {msg.format!r}")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageDecodeError("bad_encoding", f"CompressedImage decodes to {image.dtype}, not 8/16-bit colour")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    stored_rgb = "compressed rgb" in fmt  # the encoder stored RGB bytes where OpenCV assumes BGR
    if image.shape[2] == 4:
        image = image[..., :3]
    return np.ascontiguousarray(image if stored_rgb else image[..., ::-1])


def decode_compressed_depth(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage of compressed_depth_image_transport (png) -> [H, W] float32 m, 0 invalid.

    16UC1 is millimetres stored as is; 32FC1 is stored as quantised inverse depth and decoded as
    depth = A / (v - B) with the header's A, B (v = 0 is invalid), as the plugin's subscriber does.
    """
    fmt = msg.format.replace(" ", "").lower()
    if "compresseddepth" not in fmt:
        raise ImageDecodeError("bad_depth_encoding", f"format {msg.format!r} is not compressedDepth")
    if fmt.endswith("rvl"):
        raise ImageDecodeError("bad_depth_encoding", "compressedDepth rvl is not supported (use png)")
    source = fmt.split(";")[0]
    data = bytes(msg.data)
    if len(data) <= DEPTH_HEADER.size:
        raise ImageDecodeError("bad_compressed", f"compressedDepth message has only {len(data)} bytes")
    _, quant_a, quant_b = DEPTH_HEADER.unpack_from(data)
    stored = _imdecode(data[DEPTH_HEADER.size:], f"CompressedImage {msg.format!r}")
    if stored.dtype != np.uint16 or stored.ndim != 2:
        raise ImageDecodeError("bad_compressed", f"compressedDepth payload is {stored.dtype} x{stored.ndim}d, not 16UC1")
    if source in ("16uc1", "mono16"):
        return stored.astype(np.float32) / 1000.0
    if source == "32fc1":
        v = stored.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(stored > 0, quant_a / (v - quant_b), 0.0)
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    raise ImageDecodeError("bad_depth_encoding", f"compressedDepth source encoding {source!r} (16UC1 or 32FC1)")
