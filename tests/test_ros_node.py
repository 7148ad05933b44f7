"""gssplat_node over real DDS (rclpy, Fast DDS): outputs, render_pose requests, parameters, bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from gssplat_ros.cloud_layout import CLOUD_FIELDS, cloud_array_from_bytes  # noqa: E402
from gssplat_ros.ros import conversions as conv  # noqa: E402
from gssplat_ros.ros.params import ParameterError  # noqa: E402
from tests.ros_harness import Harness, random_checkpoint, scene_frames  # noqa: E402

W, H = 64, 48


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return scene_frames(tmp_path_factory.mktemp("scene"), frames=8, size=(W, H))


def base_params(ckpt, **over):
    p = {"checkpoint": ckpt, "device": "cpu", "depth_mode": "sensor", "window_size": 2, "model_width": W,
         "model_height": H, "qos_profile": "reliable", "keyframe_translation_m": 0.01,
         "diagnostics_period_s": 0.2, "warn_throttle_s": 0.0}
    p.update(over)
    return p


@pytest.fixture
def harness(ckpt):
    h = Harness(base_params(ckpt))
    yield h
    h.close()


def feed(h, frames, start_ns=1_000_000_000, step_ns=100_000_000, **kw):
    for i, (rgb, K, pose, depth) in enumerate(frames):
        h.publish_frame(start_ns + i * step_ns, rgb, K, pose, depth, **kw)
        h.wait_for(lambda: False, 0.05)


def test_outputs_have_right_encodings_sizes_stamps_and_fields(harness, frames):
    feed(harness, frames[:4])
    r = harness.received
    assert harness.wait_for(lambda: r["image"] and r["semantic"] and r["depth"] and r["cloud"] and r["camera_info"], 60)
    img, sem, col, dep, info = r["image"][-1], r["semantic"][-1], r["semantic_color"][-1], r["depth"][-1], r["camera_info"][-1]
    assert (img.encoding, sem.encoding, col.encoding, dep.encoding) == ("rgb8", "mono8", "rgb8", "32FC1")
    for m in (img, sem, col, dep, info):  # the frame of the camera they were rendered for: the image's
        assert (m.width, m.height) == (W, H) and m.header.frame_id == "camera"
    stamps = {1_000_000_000 + i * 100_000_000 for i in range(4)}
    assert conv.stamp_to_ns(img.header.stamp) in stamps  # the stamp of a frame that was rendered
    labels = conv.image_to_numpy(sem)
    assert labels.dtype == np.uint8 and ((labels < 20) | (labels == 255)).all()
    depth = conv.image_to_numpy(dep)
    assert np.nanmax(depth) < 20 and np.isfinite(depth).any()
    cloud = r["cloud"][-1]
    assert cloud.height == 1 and cloud.width > 0 and not cloud.is_bigendian and cloud.header.frame_id == "map"
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == list(CLOUD_FIELDS)
    arr = cloud_array_from_bytes(bytes(cloud.data))
    assert np.isfinite(arr["x"]).all() and (arr["opacity"] >= 0.05).all()
    q = np.stack([arr[f"rot_{i}"] for i in range(4)], -1)
    assert np.allclose(np.linalg.norm(q, axis=-1), 1, atol=1e-4)
    assert (arr["label"] < 20).all() and (info.k[0] > 0)


def test_multi_scale_semantics_parameter_reaches_the_runtime(ckpt, frames):
    from gssplat_ros.runtime.semantic_scales import MultiScaleSemantics

    h = Harness(base_params(ckpt, semantic_scales="1.0 0.5"))
    try:
        (runtime,) = h.node.pipeline._runtimes.values()
        assert isinstance(runtime, MultiScaleSemantics) and runtime.scales == (1.0, 0.5)
        feed(h, frames[:3])
        assert h.wait_for(lambda: h.received["semantic"], 60)
        sem = h.received["semantic"][-1]
        assert (sem.width, sem.height) == (W, H) and (conv.image_to_numpy(sem) < 20).any()
    finally:
        h.close()


def test_render_pose_request(harness, frames):
    feed(harness, frames[:3])
    assert harness.wait_for(lambda: harness.received["image"], 60)
    n = len(harness.received["image"])
    req = conv.pose_to_msg(frames[5][2], 777_000_000_000, "map")
    harness.pub_render_pose.publish(req)
    assert harness.wait_for(lambda: any(conv.stamp_to_ns(m.header.stamp) == 777_000_000_000
                                        for m in harness.received["image"][n:]), 30)


def test_semantic_pass_runs_only_for_subscribers(ckpt, frames):
    """Nobody on ~/render/semantic*: RGB and depth still arrive, the semantic pass is skipped and counted."""
    h = Harness(base_params(ckpt), subscribe={"image", "depth", "camera_info", "diag"})
    try:
        feed(h, frames[:4])
        assert h.wait_for(lambda: h.received["image"] and h.received["depth"], 60)
        assert h.wait_for(lambda: h.node.stats()["semantic_skipped"] >= 1, 10)

        def every_render_skipped() -> bool:  # one snapshot: the worker thread may be mid-publish
            stats = h.node.stats()
            return stats["semantic_skipped"] == stats["renders_out"]

        assert h.wait_for(every_render_skipped, 10)
        assert "render_semantic" not in h.node.pipeline.render(
            h.node._prediction, h.node._last_K, frames[0][2], W, H, semantic=False).timings_ms
    finally:
        h.close()


@pytest.mark.parametrize(
    "case",
    ["unknown_encoding", "size_mismatch", "zero_intrinsics", "nan_intrinsics", "nan_quaternion",
     "non_unit_quaternion", "missing_camera_info", "depth_zeros_nan", "duplicate_stamp", "huge_image"],
)
def test_bad_input_is_dropped_and_node_keeps_serving(ckpt, frames, case):
    h = Harness(base_params(ckpt, max_input_pixels=200_000))
    try:
        rgb, K, pose, depth = frames[0]
        t = 5_000_000_000
        expect = {
            "unknown_encoding": "bad_encoding", "size_mismatch": "size_mismatch", "zero_intrinsics": "bad_intrinsics",
            "nan_intrinsics": "bad_intrinsics", "nan_quaternion": "bad_pose", "non_unit_quaternion": "bad_pose",
            "missing_camera_info": "missing_camera_info", "duplicate_stamp": "duplicate_stamp",
            "huge_image": "image_too_large", "depth_zeros_nan": None,
        }[case]
        if case == "unknown_encoding":
            h.publish_frame(t, rgb, K, pose, depth, encoding="nv21")  # an encoding the node does not decode
        elif case == "size_mismatch":
            h.publish_frame(t, rgb, K, pose, depth, info_size=(W * 2, H * 2))
        elif case in ("zero_intrinsics", "nan_intrinsics"):
            bad = K.copy()
            bad[0, 0] = 0.0 if case == "zero_intrinsics" else np.nan
            h.publish_frame(t, rgb, bad, pose, depth)
        elif case in ("nan_quaternion", "non_unit_quaternion"):
            msg = conv.pose_to_msg(pose, t, "map")
            msg.pose.orientation.w = float("nan") if case == "nan_quaternion" else 3.0
            h.publish_frame(t, rgb, K, msg, depth)
        elif case == "missing_camera_info":
            h.publish_frame(t, rgb, K, pose, depth, send_info=False)
        elif case == "duplicate_stamp":
            h.publish_frame(t, rgb, K, pose, depth)
            h.wait_for(lambda: h.node.counts["synced"] >= 1, 10)
            h.publish_frame(t, rgb, K, pose, depth)
        elif case == "huge_image":
            big = np.zeros((1080, 1920, 3), np.uint8)
            bigK = conv.np.array([[1000.0, 0, 960], [0, 1000.0, 540], [0, 0, 1]])
            h.publish_frame(t, big, bigK, pose, np.zeros((1080, 1920), np.float32))
        elif case == "depth_zeros_nan":
            d = depth.copy()
            d[: H // 2] = 0.0
            d[H // 2:, : W // 2] = np.nan
            h.publish_frame(t, rgb, K, pose, d)
        if expect:
            assert h.wait_for(lambda: h.node.dropped[expect] >= 1, 20), dict(h.node.dropped)
        # still serving: good frames after the bad one produce renders
        feed(h, frames[1:4], start_ns=t + 1_000_000_000)
        assert h.wait_for(lambda: h.received["image"], 60), dict(h.node.dropped)
        if expect:
            diag = h.received["diag"]
            assert h.wait_for(lambda: any(kv.key == f"dropped/{expect}" for m in diag for s in m.status
                                          for kv in s.values), 10)
    finally:
        h.close()


def test_time_jump_back_resets_window(harness, frames):
    feed(harness, frames[:3], start_ns=10_000_000_000)
    assert harness.wait_for(lambda: harness.node.counts["keyframes"] >= 3, 20)
    feed(harness, frames[:3], start_ns=1_000_000_000)  # a looped bag
    assert harness.wait_for(lambda: harness.node.dropped["time_jump_back"] == 1, 20)
    assert len(harness.node.pipeline.window) <= 3
    assert harness.wait_for(lambda: harness.received["image"], 60)


def test_out_of_range_parameter_rejected_with_clear_message(ckpt):
    with pytest.raises(ParameterError, match="window_size"):
        Harness(base_params(ckpt, window_size=1))
    with pytest.raises(ParameterError, match="depth_mode"):
        Harness(base_params(ckpt, depth_mode="lidar"))
    with pytest.raises(ParameterError, match="semantic_scales.*1/n"):
        Harness(base_params(ckpt, semantic_scales="1.0 0.3"))
    with pytest.raises(ParameterError, match="semantic_scales.*divisible"):  # a quarter of the model size is 12x9
        Harness(base_params(ckpt, semantic_scales="1.0 0.25", model_width=48, model_height=36))


def test_fused_map_published_and_saved(ckpt, frames, tmp_path):
    from gssplat_ros.ply import load_ply

    out = tmp_path / "map.ply"
    h = Harness(base_params(ckpt, fuse_map=True, map_publish_period_s=0.2, map_voxel_m=0.02,
                            map_save_dir=str(tmp_path), save_map_on_shutdown=True))
    got = []
    from sensor_msgs.msg import PointCloud2

    from tests.ros_harness import RELIABLE

    h.peer.create_subscription(PointCloud2, f"{h.ns}/gssplat/map/gaussians", got.append, RELIABLE)
    try:
        feed(h, frames[:5])
        assert h.wait_for(lambda: h.node.counts["predictions"] >= 2 and got, 60)
        assert 0 < got[-1].width <= len(h.node.pipeline.map)  # the map may have grown since it was published
        pipeline = h.node.pipeline  # shutdown releases it from the node; the map it saved stays here
    finally:
        h.close()  # saves on shutdown (save_map_on_shutdown)
    assert h.node.pipeline is None and len(load_ply(out)) == len(pipeline.map)
