"""The fault matrix over real DDS: bad input is a counted drop with a named cause, /diagnostics tells the
truth, a looped bag keeps rendering, map saves follow the rules, start-up errors are one line.

The minute-long cases carry the `long` marker (make test-long)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")

from std_msgs.msg import Header  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from gssplat_ros.ply import load_ply  # noqa: E402
from gssplat_ros.ros import conversions as conv  # noqa: E402
from tests.ros_harness import Harness, random_checkpoint, scene_frames  # noqa: E402
from tests.test_ros_node import base_params, feed  # noqa: E402

W, H = 64, 48
ROOT = Path(__file__).resolve().parents[1]
NODE = str(Path(sys.executable).parent / "gssplat_node")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return scene_frames(tmp_path_factory.mktemp("scene"), frames=8, size=(W, H))


def diag_status(h):
    """The newest /diagnostics status of the node under test, or None."""
    for m in reversed(h.received["diag"]):
        for s in m.status:
            if s.name.startswith(h.ns):
                return s
    return None


def wait_diag(h, level, text, timeout_s=20):
    ok = h.wait_for(lambda: (s := diag_status(h)) is not None and s.level == bytes([level]) and text in s.message,
                    timeout_s)
    s = diag_status(h)
    assert ok, f"diagnostics: level {s.level if s else None!r} {s.message if s else None!r}"


@pytest.mark.parametrize("case", ["depth_all_nan", "depth_all_zero", "depth_1e30", "pose_1e30"])
def test_bad_depth_and_absurd_poses_are_counted_drops(ckpt, frames, case):
    h = Harness(base_params(ckpt))
    try:
        rgb, K, pose, depth = frames[0]
        t = 5_000_000_000
        if case == "pose_1e30":
            bad_pose = pose.copy()
            bad_pose[0, 3] = 1e30
            h.publish_frame(t, rgb, K, bad_pose, depth)
            expect = "bad_pose"
        else:
            value = {"depth_all_nan": np.nan, "depth_all_zero": 0.0, "depth_1e30": 1e30}[case]
            h.publish_frame(t, rgb, K, pose, np.full_like(depth, value))
            expect = "depth_invalid"
        assert h.wait_for(lambda: h.node.dropped[expect] >= 1, 20), dict(h.node.dropped)
        assert h.node.counts["keyframes"] == 0
        feed(h, frames[1:4], start_ns=t + 1_000_000_000)  # still serving
        assert h.wait_for(lambda: h.received["image"], 60), dict(h.node.dropped)
    finally:
        h.close()


def test_images_without_poses_say_no_pose_received(ckpt, frames):
    h = Harness(base_params(ckpt))
    try:
        rgb, K, _, depth = frames[0]
        for i in range(30):
            header = Header(stamp=conv.ns_to_stamp(1_000_000_000 + i * 33_000_000), frame_id="camera")
            h.pub_image.publish(conv.numpy_to_image(rgb, header, "rgb8"))
            time.sleep(0.03)
        wait_diag(h, 1, "no pose received")
    finally:
        h.close()


def test_no_motion_says_motion_below_keyframe_thresholds(ckpt, frames):
    h = Harness(base_params(ckpt, keyframe_translation_m=0.5, keyframe_rotation_deg=90.0, no_render_error_s=1.0))
    try:
        rgb, K, pose, depth = frames[0]
        for i in range(25):
            h.publish_frame(1_000_000_000 + i * 100_000_000, rgb, K, pose, depth)
            time.sleep(0.08)
        wait_diag(h, 1, "motion below keyframe thresholds")
    finally:
        h.close()


def test_every_frame_failing_is_an_error_not_running(ckpt, frames):
    h = Harness(base_params(ckpt, no_render_error_s=1.0))

    def broken_predict(window):
        raise RuntimeError("the renderer is broken")

    h.node.pipeline.predict = broken_predict
    try:
        for i in range(20):
            rgb, K, pose, depth = frames[i % 8]
            h.publish_frame(1_000_000_000 + i * 100_000_000, rgb, K, pose, depth)
            time.sleep(0.1)
        wait_diag(h, 2, "nothing rendered")
        assert "inference fails" in diag_status(h).message
    finally:
        h.close()


def test_stale_when_input_stops(ckpt, frames):
    h = Harness(base_params(ckpt, stale_input_s=0.5))
    try:
        feed(h, frames[:3])
        assert h.wait_for(lambda: h.received["image"], 60)
        wait_diag(h, 3, "no input for")
    finally:
        h.close()


def test_exception_in_a_subscription_callback_is_counted_and_the_node_keeps_serving(ckpt, frames):
    h = Harness(base_params(ckpt))
    _, sync = h.node.inputs._sync
    real_add, calls = sync.add, []

    def add_failing_once(msg, index, stamp_ns=None):
        calls.append(index)
        if len(calls) == 1:
            raise KeyError("injected")
        return real_add(msg, index, stamp_ns)

    sync.add = add_failing_once
    try:
        feed(h, frames[:4])
        assert h.wait_for(lambda: h.node.dropped["internal_error"] == 1, 20)
        assert h.wait_for(lambda: h.received["image"], 60)  # the executor survived
    finally:
        h.close()


def publish_looped_bag(h, frames, loops, seconds, image_hz=30.0, pose_hz=200.0, after_loop=None):
    """Images (with depth) at image_hz and poses at pose_hz, stamps restarting at 1 s every loop."""
    start_ns = 1_000_000_000
    rgb0, K, _, _ = frames[0]
    header = Header(stamp=conv.ns_to_stamp(start_ns), frame_id="camera")
    h.pub_info.publish(conv.camera_info_msg(K, W, H, header))
    h.wait_for(lambda: getattr(h.node, "inputs", h.node)._camera_info is not None, 5)
    image_period, pose_period = 1.0 / image_hz, 1.0 / pose_hz
    for loop in range(loops):
        t0 = time.monotonic()
        next_image = 0.0
        k = 0
        while (elapsed := k * pose_period) < seconds:
            ahead = t0 + elapsed - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            index = int(elapsed / image_period)
            rgb, K, pose, depth = frames[index % len(frames)]
            stamp = start_ns + int(elapsed * 1e9)
            if elapsed >= next_image:
                header = Header(stamp=conv.ns_to_stamp(stamp), frame_id="camera")
                h.pub_image.publish(conv.numpy_to_image(rgb, header, "rgb8"))
                h.pub_depth.publish(conv.numpy_to_image(depth.astype(np.float32), header, "32FC1"))
                h.pub_info.publish(conv.camera_info_msg(K, W, H, header))
                next_image += image_period
            h.pub_pose.publish(conv.pose_to_msg(pose, stamp, "map"))
            k += 1
        if after_loop:
            after_loop(loop)


def run_looped_bag(ckpt, frames, loops, seconds):
    h = Harness(base_params(ckpt))
    renders_after_loop = []
    try:
        def loop_with_renders(loop):  # renders of this loop have arrived by its end
            renders_after_loop.append(len(h.received["image"]))

        publish_looped_bag(h, frames, loops, seconds, after_loop=loop_with_renders)
        time.sleep(0.5)
        stats = h.node.stats()
        assert h.node.dropped["internal_error"] == 0 and h.node.dropped["inference_error"] == 0, stats
        assert h.node.dropped["time_jump_back"] == loops - 1, stats
        counts = [0] + renders_after_loop
        assert all(b > a for a, b in zip(counts, counts[1:])), f"renders per loop: {counts}"
        return stats
    finally:
        h.close()


def test_looped_bag_200hz_poses_30hz_images_renders_after_every_loop(ckpt, frames):
    run_looped_bag(ckpt, frames, loops=3, seconds=3.0)


@pytest.mark.long
def test_looped_bag_for_minutes(ckpt, frames):
    run_looped_bag(ckpt, frames, loops=12, seconds=15.0)


# ----------------------------------------------------------------- map saving over DDS
def call_save(h, timeout_s=30):
    client = h.peer.create_client(Trigger, f"{h.ns}/gssplat/save_map")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert h.wait_for(future.done, timeout_s)
    return future.result()


def test_save_map_service_writes_only_inside_map_save_dir(ckpt, frames, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    h = Harness(base_params(ckpt, fuse_map=True, map_voxel_m=0.02, map_save_dir=str(maps), map_file_name="notes.ply"))
    try:
        feed(h, frames[:4])
        assert h.wait_for(lambda: h.node.counts["predictions"] >= 1, 60)
        (maps / "notes.ply").write_text("my notes\n")  # a text file of the user's: never overwritten
        r = call_save(h)
        assert not r.success and "not a Gaussian PLY" in r.message
        assert (maps / "notes.ply").read_text() == "my notes\n"
        (maps / "notes.ply").unlink()
        r = call_save(h)
        assert r.success and str(maps / "notes.ply") in r.message, r.message
        assert len(load_ply(maps / "notes.ply")) > 0
        assert sorted(p.name for p in maps.iterdir()) == ["notes.ply"]
    finally:
        h.close()


def test_save_map_to_a_fifo_does_not_block_the_node(ckpt, frames, tmp_path):
    os.mkfifo(tmp_path / "map.ply")
    h = Harness(base_params(ckpt, fuse_map=True, map_save_dir=str(tmp_path)))
    try:
        feed(h, frames[:3])
        assert h.wait_for(lambda: h.node.counts["predictions"] >= 1, 60)
        r = call_save(h, timeout_s=10)
        assert not r.success and "not a regular file" in r.message
        before = len(h.received["image"])
        feed(h, frames[3:6], start_ns=5_000_000_000)
        assert h.wait_for(lambda: len(h.received["image"]) > before, 60)  # still rendering
    finally:
        h.close()


def test_save_map_cli_against_the_service(ckpt, frames, tmp_path):
    h = Harness(base_params(ckpt, fuse_map=True, map_save_dir=str(tmp_path)))
    try:
        feed(h, frames[:3])
        assert h.wait_for(lambda: h.node.counts["predictions"] >= 1, 60)
        result = {}

        def cli():
            result["r"] = subprocess.run([sys.executable, "-m", "gssplat_ros.cli", "save-map", "--node",
                                          f"{h.ns}/gssplat"], capture_output=True, text=True, timeout=120,
                                         env=dict(os.environ, PYTHONPATH=str(ROOT)))

        t = threading.Thread(target=cli)
        t.start()
        t.join(150)
        r = result["r"]
        assert r.returncode == 0, r.stderr
        assert "saved" in r.stdout and str(tmp_path / "map.ply") in r.stdout
        assert len(load_ply(tmp_path / "map.ply")) > 0
    finally:
        h.close()


# ----------------------------------------------------------------- start-up errors
def node_run(tmp_path, *params):
    cmd = [NODE, "--ros-args", "-r", "__ns:=/startup"]
    for p in params:
        cmd += ["-p", p]
    env = dict(os.environ, AMENT_PREFIX_PATH=os.environ.get("AMENT_PREFIX_PATH", sys.prefix))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path)


def startup_cases():
    import torch

    from gssplat_ros.render import gsplat_usable

    cases = ["missing_checkpoint", "random_bytes_checkpoint", "mismatched_checkpoint"]
    if not torch.cuda.is_available():
        cases.append("cuda_without_cuda")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        cases.append("tensorrt_without_tensorrt")
    if not gsplat_usable()[0]:
        cases.append("gsplat_without_gsplat")
    return cases


@pytest.mark.parametrize("case", startup_cases())
def test_start_up_errors_are_one_line_and_a_non_zero_exit(tmp_path, ckpt, case):
    if case == "missing_checkpoint":
        params = [f"checkpoint:={tmp_path / 'nope'}"]
    elif case == "random_bytes_checkpoint":
        stem = tmp_path / "random"
        stem.with_suffix(".safetensors").write_bytes(os.urandom(4096))
        (tmp_path / "random.json").write_text(Path(ckpt + ".json").read_text())
        params = [f"checkpoint:={stem}"]
    elif case == "mismatched_checkpoint":  # the tiny model's weights under a larger model's config
        import json

        from gssplat_ros.model import ModelConfig

        meta = json.loads(Path(ckpt + ".json").read_text())
        meta["config"] = ModelConfig.preset("paper", depth_mode="sensor").to_dict()
        (tmp_path / "mismatch.json").write_text(json.dumps(meta))
        (tmp_path / "mismatch.safetensors").write_bytes(Path(ckpt + ".safetensors").read_bytes())
        params = [f"checkpoint:={tmp_path / 'mismatch'}"]
    else:
        params = [f"checkpoint:={ckpt}", {"cuda_without_cuda": "device:=cuda",
                                         "tensorrt_without_tensorrt": "runtime:=tensorrt",
                                         "gsplat_without_gsplat": "render_backend:=gsplat"}[case]]
    r = node_run(tmp_path, "depth_mode:=sensor", *params)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gssplat_node: cannot start:"), r.stderr


def test_a_new_window_job_queued_before_a_reset_does_not_predict_on_the_reset_window(ckpt, frames):
    from gssplat_ros.ros.node import RenderJob

    h = Harness(base_params(ckpt))
    try:
        feed(h, frames[:3], start_ns=10_000_000_000)
        assert h.wait_for(lambda: h.node.counts["predictions"] >= 1, 60)
        h.publish_frame(1_000_000_000, *frames[3])  # time jumps back: one keyframe in the new window
        assert h.wait_for(lambda: h.node.dropped["time_jump_back"] == 1 and len(h.node.pipeline.window) == 1, 20)
        predictions = h.node.counts["predictions"]
        h.node._process(RenderJob(1_000_000_000, frames[3][2], time.monotonic(), new_window=True))  # no raise
        assert h.node.counts["stale_windows_skipped"] == 1 and h.node.counts["predictions"] == predictions
        assert h.node.dropped["inference_error"] == 0
    finally:
        h.close()
