"""gssplat_node over real DDS with the onnxruntime encoder (runtime:=onnxruntime), and a clear start-up
error for runtime:=tensorrt where TensorRT is missing. Reuses the ROS tests' harness (tests/ros_harness.py)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("onnxruntime")

from gssplat_ros.cloud_layout import cloud_array_from_bytes  # noqa: E402
from gssplat_ros.ros import conversions as conv  # noqa: E402
from tests.ros_harness import Harness, random_checkpoint, scene_frames  # noqa: E402

W, H = 64, 48


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return scene_frames(tmp_path_factory.mktemp("scene"), frames=6, size=(W, H))


def params(ckpt, **over):
    p = {"checkpoint": ckpt, "device": "cpu", "depth_mode": "sensor", "window_size": 2, "model_width": W,
         "model_height": H, "qos_profile": "reliable", "keyframe_translation_m": 0.01, "diagnostics_period_s": 0.2,
         "warn_throttle_s": 0.0, "runtime": "onnxruntime"}  # fmt: skip
    p.update(over)
    return p


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_node_serves_renders_and_clouds_with_onnxruntime(ckpt, frames, tmp_path, monkeypatch, precision):
    if precision == "int8":
        pytest.importorskip("numba")  # int8 calibration windows come from the scene generator
    monkeypatch.setenv("GSSPLAT_CACHE_DIR", str(tmp_path / "cache"))
    h = Harness(params(ckpt, precision=precision))
    try:
        runtime = h.node.pipeline._runtimes["sensor"]
        assert runtime.info.name == "onnxruntime"
        # the CPU flavour: two graphs with the voxel pooling between them
        graph = "int8" if precision == "int8" else "fp32"  # auto: onnxruntime's default
        assert list((tmp_path / "cache").glob(f"onnx/*/*_v2_{W}x{H}_{graph}_host.onnx")), "graph exported at start-up"
        for i, (rgb, K, pose, depth) in enumerate(frames[:4]):
            h.publish_frame(1_000_000_000 + i * 100_000_000, rgb, K, pose, depth)
            h.wait_for(lambda: False, 0.05)
        r = h.received
        assert h.wait_for(lambda: r["image"] and r["semantic"] and r["depth"] and r["cloud"], 60)
        img, sem = r["image"][-1], r["semantic"][-1]
        assert (img.encoding, sem.encoding) == ("rgb8", "mono8") and (img.width, img.height) == (W, H)
        labels = conv.image_to_numpy(sem)
        assert ((labels < runtime.info.num_classes) | (labels == 255)).all()
        rgb = conv.image_to_numpy(img)
        assert rgb.std() > 1.0  # a real render, not a blank frame
        cloud = cloud_array_from_bytes(bytes(r["cloud"][-1].data))
        assert len(cloud) > 0 and np.isfinite(cloud["x"]).all()
    finally:
        h.close()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_node_with_tensorrt_but_no_tensorrt_fails_clearly(ckpt):
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from gssplat_ros.export.tensorrt_build import TensorRTUnavailable
    from gssplat_ros.ros.node import GssplatNode, activate_at_start

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        overrides = [Parameter(k, value=v) for k, v in params(ckpt, runtime="tensorrt").items()]
        with pytest.raises(TensorRTUnavailable, match="TensorRT is not available"):
            node = GssplatNode(context=ctx, namespace="/trt_missing", parameter_overrides=overrides)
            try:
                activate_at_start(node)
            finally:
                node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
