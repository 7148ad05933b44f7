"""Image decoding of robot encodings through ros/conversions: Bayer, YUV 4:2:2, mono16, CompressedImage."""

import struct

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from gssplat_ros.ros import conversions as conv  # noqa: E402

H, W = 24, 32


def raw_image(array: np.ndarray, encoding: str) -> Image:
    array = np.ascontiguousarray(array)
    return Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
                 step=array.strides[0], data=array.tobytes())


def patches() -> np.ndarray:
    """[H, W, 3] uint8 RGB made of four flat colour quadrants (demosaicing is exact away from edges)."""
    img = np.zeros((H, W, 3), np.uint8)
    img[: H // 2, : W // 2] = (200, 40, 10)
    img[: H // 2, W // 2:] = (20, 180, 60)
    img[H // 2:, : W // 2] = (30, 70, 220)
    img[H // 2:, W // 2:] = (250, 250, 120)
    return img


# Where each colour sits in the 2x2 Bayer cell: pattern letters read row by row.
@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_patterns_demosaic_to_the_right_colours(pattern):
    rgb = patches()
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.zeros((H, W), np.uint8)
    for i, letter in enumerate(pattern):
        dy, dx = divmod(i, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, channel[letter]]
    out = conv.color_image(raw_image(mosaic, f"bayer_{pattern}8"))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    inner = (slice(3, H // 2 - 3), slice(3, W // 2 - 3))  # inside one flat quadrant, away from edges
    assert np.abs(out[inner].astype(int) - rgb[inner].astype(int)).max() <= 2


def bt601_yuv(rgb):
    """Limited-range BT.601 (what OpenCV's YUV422 decoders invert): (Y, U, V) floats."""
    r, g, b = (np.asarray(rgb, np.float64) / 255.0)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return y, u, v


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_byte_orders(encoding):
    colour = (200, 60, 30)
    y, u, v = (int(round(c)) for c in bt601_yuv(colour))
    pair = [u, y, v, y] if encoding in ("yuv422", "uyvy") else [y, u, y, v]  # two pixels per 4 bytes
    data = np.tile(np.array(pair, np.uint8), (H, W // 2)).reshape(H, W, 2)
    out = conv.color_image(raw_image(data, encoding))
    assert out.shape == (H, W, 3)
    assert np.abs(out.astype(int) - np.array(colour)).max() <= 3  # 8-bit YUV rounding


def test_mono16_keeps_the_top_byte():
    mono = (np.arange(H * W, dtype=np.uint32).reshape(H, W) * 85).astype(np.uint16)
    out = conv.color_image(raw_image(mono, "mono16"))
    assert np.array_equal(out[..., 0], (mono >> 8).astype(np.uint8)) and np.array_equal(out[..., 0], out[..., 2])


def smooth_rgb() -> np.ndarray:
    u, v = np.meshgrid(np.linspace(0, 1, W), np.linspace(0, 1, H))
    return (np.stack([u, v, 1 - u], -1) * 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; png compressed bgr8", "png"])
def test_compressed_bgr_streams_decode_to_rgb(fmt):
    rgb = smooth_rgb()
    ext = ".jpg" if "jpeg" in fmt else ".png"
    ok, buf = cv2.imencode(ext, rgb[..., ::-1].copy())  # image_transport encodes BGR bytes
    out = conv.compressed_color_image(CompressedImage(format=fmt, data=buf.tobytes()))
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert out.shape == (H, W, 3)
    assert (err.mean() < 3) if ext == ".jpg" else (err.max() == 0)  # jpeg is lossy; png exact


def test_compressed_rgb_bytes_and_mono():
    rgb = smooth_rgb()
    _, buf = cv2.imencode(".png", rgb)  # RGB bytes stored as they are: the format's last word says so
    out = conv.compressed_color_image(CompressedImage(format="rgb8; png compressed rgb8", data=buf.tobytes()))
    assert np.array_equal(out, rgb)
    _, buf = cv2.imencode(".png", rgb[..., 1].copy())
    out = conv.compressed_color_image(CompressedImage(format="mono8; png compressed ", data=buf.tobytes()))
    assert np.array_equal(out[..., 0], rgb[..., 1]) and np.array_equal(out[..., 2], rgb[..., 1])


def compressed_depth(stored: np.ndarray, fmt: str, quant_a: float = 0.0, quant_b: float = 0.0) -> CompressedImage:
    _, buf = cv2.imencode(".png", stored)
    return CompressedImage(format=fmt, data=struct.pack("<iff", 0, quant_a, quant_b) + buf.tobytes())


def test_compressed_depth_16uc1_png_is_millimetres():
    mm = np.random.default_rng(1).integers(0, 8000, (H, W)).astype(np.uint16)
    out = conv.compressed_depth_image(compressed_depth(mm, "16UC1; compressedDepth png"))
    assert out.dtype == np.float32 and np.allclose(out, mm / 1000.0)


def test_compressed_depth_32fc1_inverse_depth():
    depth = np.random.default_rng(2).uniform(0.3, 6.0, (H, W)).astype(np.float32)
    depth[0, :4] = 0.0  # invalid pixels are stored as 0
    # compressed_depth_image_transport's encoder with its defaults (depth_max 10 m, quantization 100).
    quant_a = 100.0 * 101.0
    quant_b = 1.0 - quant_a / 10.0
    stored = np.where(depth > 0, quant_a / np.maximum(depth, 1e-6) + quant_b, 0).astype(np.uint16)
    out = conv.compressed_depth_image(compressed_depth(stored, "32FC1; compressedDepth png", quant_a, quant_b))
    assert (out[0, :4] == 0).all()
    valid = depth > 0
    # Inverse-depth quantisation: one step is z^2 / A, 3.6 mm at 6 m.
    assert np.abs(out[valid] - depth[valid]).max() < 0.004


def test_corrupt_and_unsupported_inputs_raise_conversion_errors():
    with pytest.raises(conv.ConversionError) as err:
        conv.compressed_color_image(CompressedImage(format="jpeg", data=b"\xff\xd8 not really a jpeg"))
    assert err.value.reason == "bad_compressed"
    with pytest.raises(conv.ConversionError) as err:
        conv.compressed_color_image(CompressedImage(format="jpeg", data=b""))
    assert err.value.reason == "bad_compressed"
    with pytest.raises(conv.ConversionError) as err:
        conv.compressed_depth_image(CompressedImage(format="16UC1; compressedDepth png", data=b"\x00" * 8))
    assert err.value.reason == "bad_compressed"
    with pytest.raises(conv.ConversionError) as err:
        conv.compressed_depth_image(CompressedImage(format="16UC1; compressedDepth rvl", data=b"\x00" * 40))
    assert err.value.reason == "bad_depth_encoding"
    with pytest.raises(conv.ConversionError) as err:
        conv.color_image(raw_image(np.zeros((H, W), np.uint8), "bayer_rggb16"))
    assert err.value.reason == "bad_encoding"
    short = raw_image(np.zeros((H, W, 2), np.uint8), "yuv422")
    short.data = bytes(10)
    with pytest.raises(conv.ConversionError) as err:
        conv.color_image(short)
    assert err.value.reason == "bad_image_size"
