"""The lifecycle node over real DDS: change_state from a peer, autostart and managed start, labels and frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import PointCloud2  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from gssplat_ros.cloud_layout import cloud_array_from_bytes, unpack_rgb  # noqa: E402
from gssplat_ros.ros import conversions as conv  # noqa: E402
from tests.ros_harness import RELIABLE, Harness, random_checkpoint, scene_frames  # noqa: E402
from tests.test_ros_process import env, node_cmd  # noqa: E402

W, H = 64, 48
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return random_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    return scene_frames(tmp_path_factory.mktemp("scene"), frames=6, size=(W, H))


def params(ckpt, **over):
    p = {"checkpoint": ckpt, "device": "cpu", "depth_mode": "sensor", "window_size": 2, "model_width": W,
         "model_height": H, "qos_profile": "reliable", "keyframe_translation_m": 0.01, "warn_throttle_s": 0.0}
    p.update(over)
    return p


def feed(h, frames, start_ns):
    for i, (rgb, K, pose, depth) in enumerate(frames):
        h.publish_frame(start_ns + i * 100_000_000, rgb, K, pose, depth)
        h.wait_for(lambda: False, 0.05)


def change_state(h, client, transition_id) -> bool:
    future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
    assert h.wait_for(future.done, 60), "change_state did not answer"
    return future.result().success


def get_state(h, client) -> str:
    future = client.call_async(GetState.Request())
    assert h.wait_for(future.done, 10), "get_state did not answer"
    return future.result().current_state.label


def test_lifecycle_round_trip_over_change_state(ckpt, frames):
    h = Harness(params(ckpt), autostart=False)
    try:
        node_name = f"{h.ns}/gssplat"
        change = h.peer.create_client(ChangeState, f"{node_name}/change_state")
        state = h.peer.create_client(GetState, f"{node_name}/get_state")
        assert change.wait_for_service(10) and state.wait_for_service(10)
        assert get_state(h, state) == "unconfigured" and h.node.pipeline is None

        assert change_state(h, change, Transition.TRANSITION_CONFIGURE)
        assert get_state(h, state) == "inactive" and h.node.pipeline is not None
        assert h.pub_image.get_subscription_count() == 0  # inactive: no inputs taken

        assert change_state(h, change, Transition.TRANSITION_ACTIVATE)
        assert get_state(h, state) == "active"
        assert h.wait_for(lambda: h.pub_image.get_subscription_count() > 0, 10)
        feed(h, frames[:4], 1_000_000_000)
        assert h.wait_for(lambda: h.received["image"] and h.received["cloud"], 60), h.node.stats()

        assert change_state(h, change, Transition.TRANSITION_DEACTIVATE)
        assert get_state(h, state) == "inactive"
        assert h.wait_for(lambda: h.pub_image.get_subscription_count() == 0, 10)
        renders = h.node.counts["renders"]
        for key in h.received:
            h.received[key].clear()
        feed(h, frames[:4], 5_000_000_000)
        h.wait_for(lambda: False, 1.0)  # time for any output to arrive: none may
        assert not h.received["image"] and not h.received["cloud"] and h.node.counts["renders"] == renders

        assert change_state(h, change, Transition.TRANSITION_CLEANUP)
        assert get_state(h, state) == "unconfigured" and h.node.pipeline is None

        assert change_state(h, change, Transition.TRANSITION_CONFIGURE)
        assert change_state(h, change, Transition.TRANSITION_ACTIVATE)
        assert h.wait_for(lambda: h.pub_image.get_subscription_count() > 0, 10)
        feed(h, frames[:4], 9_000_000_000)
        assert h.wait_for(lambda: h.received["image"], 60), h.node.stats()
    finally:
        h.close()


def test_a_failed_configure_answers_failure_and_stays_unconfigured(tmp_path):
    h = Harness(params(str(tmp_path / "missing")), autostart=False)
    try:
        change = h.peer.create_client(ChangeState, f"{h.ns}/gssplat/change_state")
        assert change.wait_for_service(10)
        assert not change_state(h, change, Transition.TRANSITION_CONFIGURE)
        assert h.node._state_machine.current_state[1] == "unconfigured"
        assert "missing" in str(h.node.configure_error)
    finally:
        h.close()


def test_labels_legend_and_semantic_cloud(ckpt, frames):
    h = Harness(params(ckpt))
    try:
        base = f"{h.ns}/gssplat"
        got = {"labels": [], "legend": [], "semantic_cloud": []}
        cloud_sub = h.peer.create_subscription(PointCloud2, f"{base}/gaussians/semantic",
                                               got["semantic_cloud"].append, RELIABLE)
        assert h.wait_for(lambda: h.node.pub_semantic_cloud.get_subscription_count() > 0, 10)
        feed(h, frames[:4], 1_000_000_000)
        assert h.wait_for(lambda: got["semantic_cloud"], 60), h.node.stats()
        # Latched: subscribers that join after the node published still get the classes.
        h.peer.create_subscription(String, f"{base}/labels", got["labels"].append, LATCHED)
        h.peer.create_subscription(MarkerArray, f"{base}/labels/legend", got["legend"].append, LATCHED)
        assert h.wait_for(lambda: got["labels"] and got["legend"], 10)

        info = json.loads(got["labels"][-1].data)
        names = list(h.node.class_names)
        assert info["class_names"] == names and len(names) > 1
        palette = np.asarray(h.node.cfg.palette, np.uint8).reshape(-1, 3)
        assert np.array_equal(np.asarray(info["palette"]), palette[:len(names)])
        markers = got["legend"][-1].markers
        assert [m.text for m in markers] == [f"{i} {n}" for i, n in enumerate(names)]
        assert all(m.header.frame_id == "map" for m in markers)
        m3 = markers[3]
        assert np.allclose([m3.color.r, m3.color.g, m3.color.b], palette[3] / 255.0)

        cloud = got["semantic_cloud"][-1]
        assert cloud.header.frame_id == "map" and cloud.width > 0
        arr = cloud_array_from_bytes(bytes(cloud.data))
        labelled = arr["label"] < len(names)
        assert labelled.any()
        assert np.array_equal(unpack_rgb(arr["rgb"][labelled]), palette[arr["label"][labelled]])
        h.peer.destroy_subscription(cloud_sub)
    finally:
        h.close()


def test_render_pose_outside_world_frame_is_refused_unless_tf_can_transform_it(ckpt, frames):
    from gssplat_ros.ros.tf import TfBuffer, matrix_to_transform_stamped

    h = Harness(params(ckpt))
    try:
        feed(h, frames[:4], 1_000_000_000)
        assert h.wait_for(lambda: h.node._prediction is not None and h.received["image"], 60)
        pose = frames[2][2]

        def request(frame_id):
            msg = conv.pose_to_msg(pose, 2_000_000_000, frame_id)
            h.pub_render_pose.publish(msg)

        request("odom")
        assert h.wait_for(lambda: h.node.dropped["render_pose_frame"] == 1, 10)

        h.received["image"].clear()
        request("map")
        assert h.wait_for(lambda: any(m.header.frame_id == "gssplat_render_optical" for m in h.received["image"]), 30)

        buffer = TfBuffer()  # the input side's buffer: map <- odom, 1 m along x
        map_from_odom = np.eye(4)
        map_from_odom[0, 3] = 1.0
        buffer.set_transform_static(matrix_to_transform_stamped(map_from_odom, "map", "odom", 0), "test")
        h.node.inputs = SimpleNamespace(tf_buffer=buffer)
        h.received["image"].clear()
        request("odom")
        assert h.wait_for(lambda: any(m.header.frame_id == "gssplat_render_optical" for m in h.received["image"]), 30)
        assert h.node.dropped["render_pose_frame"] == 1
    finally:
        h.close()


def test_managed_start_waits_for_change_state(tmp_path):
    """`gssplat_node` with autostart:=false comes up unconfigured and is driven by ~/change_state."""
    ckpt = random_checkpoint(tmp_path)
    ns = "/m" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen(
        node_cmd(ns, "autostart:=false", f"checkpoint:={ckpt}", "device:=cpu", "depth_mode:=sensor",
                 "window_size:=2", "model_width:=64", "model_height:=48"),
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ctx = Context()
    rclpy.init(context=ctx)
    peer = rclpy.create_node("peer", namespace=ns, context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(peer)
    h = SimpleNamespace(wait_for=lambda cond, t: _spin_until(ex, cond, t, proc))
    try:
        change = peer.create_client(ChangeState, f"{ns}/gssplat/change_state")
        state = peer.create_client(GetState, f"{ns}/gssplat/get_state")
        assert h.wait_for(lambda: change.service_is_ready() and state.service_is_ready(), 90)
        assert get_state(h, state) == "unconfigured"
        probe = peer.create_publisher(PoseStamped, f"{ns}/pose", RELIABLE)
        assert probe.get_subscription_count() == 0  # nothing subscribed before activation
        assert change_state(h, change, Transition.TRANSITION_CONFIGURE)
        assert change_state(h, change, Transition.TRANSITION_ACTIVATE)
        assert get_state(h, state) == "active"
        assert h.wait_for(lambda: probe.get_subscription_count() > 0, 10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        ex.shutdown()
        peer.destroy_node()
        rclpy.try_shutdown(context=ctx)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def _spin_until(ex, cond, timeout_s, proc) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        assert proc.poll() is None, proc.stdout.read()
        ex.spin_once(timeout_sec=0.05)
    return cond()
