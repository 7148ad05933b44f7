"""Robot inputs after a real DDS hop (rclpy, private Context): the message field types rclpy hands a
subscriber (array.array, numpy arrays, bytes) decode like the ones built in process."""

import struct
import uuid

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402

from gssplat_ros.ros import conversions as conv  # noqa: E402
from gssplat_ros.ros import tf  # noqa: E402
from gssplat_ros.ros.spin import BackgroundSpinner  # noqa: E402
from tests.ros_harness import Harness  # noqa: E402

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
TOPICS = {"jpeg": CompressedImage, "depth": CompressedImage, "bayer": Image, "info": CameraInfo,
          "tf": TransformStamped}


wait_for = Harness.wait_for  # one deadline-based wait for every DDS test


@pytest.fixture
def relay():
    """Publish a message on a private graph and return the one the subscriber received."""
    ctx = Context()
    rclpy.init(context=ctx)
    ns = "/r" + uuid.uuid4().hex[:8]
    pub_node = rclpy.create_node("inputs_pub", namespace=ns, context=ctx)
    sub_node = rclpy.create_node("inputs_sub", namespace=ns, context=ctx)
    got = {k: [] for k in TOPICS}
    pubs = {k: pub_node.create_publisher(t, k, RELIABLE) for k, t in TOPICS.items()}
    for k, t in TOPICS.items():
        sub_node.create_subscription(t, k, lambda m, k=k: got[k].append(m), RELIABLE)
    spinner = BackgroundSpinner(ctx, pub_node, sub_node)
    assert wait_for(lambda: all(p.get_subscription_count() for p in pubs.values()), 10)

    def send(key, msg):
        pubs[key].publish(msg)
        assert wait_for(lambda: got[key], 10), key
        return got[key].pop()

    yield send
    spinner.stop()
    pub_node.destroy_node()
    sub_node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def test_compressed_bayer_camera_info_and_tf_over_dds(relay):
    h, w = 48, 64
    u, v = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    rgb = (np.stack([u, v, 1 - u], -1) * 255).astype(np.uint8)

    _, png = cv2.imencode(".png", rgb[..., ::-1].copy())
    msg = relay("jpeg", CompressedImage(format="rgb8; png compressed bgr8", data=png.tobytes()))
    assert np.array_equal(conv.compressed_color_image(msg), rgb)

    mm = np.arange(h * w, dtype=np.uint16).reshape(h, w)
    _, png16 = cv2.imencode(".png", mm)
    msg = relay("depth", CompressedImage(format="16UC1; compressedDepth png",
                                         data=struct.pack("<iff", 0, 0.0, 0.0) + png16.tobytes()))
    assert np.allclose(conv.compressed_depth_image(msg), mm / 1000.0)

    flat = np.zeros((h, w), np.uint8)
    flat[0::2, 0::2], flat[0::2, 1::2], flat[1::2, 0::2], flat[1::2, 1::2] = 200, 100, 100, 30  # r, g, g, b
    msg = relay("bayer", Image(height=h, width=w, encoding="bayer_rggb8", step=w, data=flat.tobytes()))
    assert np.abs(conv.color_image(msg)[8:-8, 8:-8].astype(int) - [200, 100, 30]).max() <= 1

    info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
    info.k = [60.0, 0.0, 31.5, 0.0, 60.0, 23.5, 0.0, 0.0, 1.0]
    info.d = [-0.2, 0.05, 0.0, 0.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg = relay("info", info)
    rect = conv.camera_rectifier(msg)
    assert rect.needs_remap and rect.rectify_color(rgb).shape == rgb.shape
    assert conv.camera_rectifier(msg) is rect  # the same calibration again: cached maps
    msg.distortion_model = "kannala_brandt"
    with pytest.raises(conv.ConversionError) as err:
        conv.camera_rectifier(msg)
    assert err.value.reason == "unknown_distortion_model"

    buf = tf.TfBuffer()
    for stamp_s, x in ((10, 0.0), (12, 2.0)):
        T = np.eye(4)
        T[0, 3] = x
        assert buf.set_transform(relay("tf", tf.matrix_to_transform_stamped(T, "odom", "base_link", stamp_s * 10**9)),
                                 "dds")
    t = buf.lookup_transform("odom", "base_link", Time(seconds=11))
    assert np.isclose(t.transform.translation.x, 1.0)
