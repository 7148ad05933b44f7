"""`gssplat bag play`: a bag published with rclpy is received over real DDS by a subscriber in this test.

Each test uses private Contexts on a random ROS domain and a unique topic prefix, so tests running
side by side on one machine do not hear each other.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ros-jazzy-rclpy) is not installed")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.signals import SignalHandlerOptions  # noqa: E402

from gssplat_ros.bags.scene_bag import write_scene_bag  # noqa: E402
from gssplat_ros.cli import main  # noqa: E402
from gssplat_ros.ros.bag import PlayConfig, play_bag  # noqa: E402
from tests.bag_helpers import H, W, make_scene, scene_pose  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FRAMES = 4


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class Listener:
    """A subscriber node on its own Context and executor thread; keeps what arrives per topic."""

    def __init__(self, domain_id: int, prefix: str, reliable: bool = True):
        from geometry_msgs.msg import PoseStamped
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image

        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"listener_{uuid.uuid4().hex[:8]}", context=self.ctx)
        reliability = ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=50, reliability=reliability)
        self.got: dict[str, list] = {}
        for topic, msg_type in [("/camera/image_raw", Image), ("/camera/camera_info", CameraInfo),
                                ("/camera/pose", PoseStamped), ("/camera/depth", Image), ("/clock", Clock)]:
            self.got[topic] = []
            self.node.create_subscription(msg_type, prefix + topic, self.got[topic].append, qos)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)
        self.thread.join(timeout=5)


@pytest.fixture
def ros_env(tmp_path):
    scene = make_scene(tmp_path / "scene", frames=FRAMES)
    bag = tmp_path / "bag"
    write_scene_bag(scene, bag)
    domain_id = random.randint(20, 99)
    prefix = f"/t_{uuid.uuid4().hex[:8]}"
    listener = Listener(domain_id, prefix)
    yield scene, bag, domain_id, prefix, listener
    listener.close()


def _player_context(domain_id: int) -> Context:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    return ctx


def test_play_received_over_dds(ros_env):
    scene, bag, domain_id, prefix, listener = ros_env
    ctx = _player_context(domain_id)
    try:
        stats = play_bag(bag, PlayConfig(rate=10.0, clock=True, prefix=prefix, delay_s=1.0), context=ctx)
    finally:
        rclpy.try_shutdown(context=ctx)
    assert stats.published["/camera/image_raw"] == FRAMES and not stats.interrupted
    got = listener.got
    assert wait_for(lambda: len(got["/camera/pose"]) == FRAMES, 10.0), {t: len(v) for t, v in got.items()}
    assert len(got["/camera/image_raw"]) == FRAMES and len(got["/camera/depth"]) == FRAMES
    from PIL import Image

    for i, msg in enumerate(got["/camera/image_raw"]):
        assert (msg.encoding, msg.width, msg.height) == ("rgb8", W, H)
        pixels = np.frombuffer(bytes(msg.data), np.uint8).reshape(H, W, 3)
        np.testing.assert_array_equal(pixels, np.asarray(Image.open(scene / "color" / f"{i}.png")))
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == 1000 * 10**9 + i * 10**8
    pose = got["/camera/pose"][2].pose
    assert pose.position.x == pytest.approx(scene_pose(2)[0, 3])
    assert got["/camera/depth"][0].encoding == "32FC1"
    if "/tf" in stats.skipped_topics:  # tf2_msgs is not on PyPI: the player says so instead of failing
        assert "not installed" in stats.skipped_topics["/tf"]
    clocks = [c.clock.sec * 10**9 + c.clock.nanosec for c in got["/clock"]]
    assert clocks and clocks == sorted(clocks) and clocks[-1] == 1000 * 10**9 + (FRAMES - 1) * 10**8


def test_play_loop_and_topic_filter(ros_env):
    _, bag, domain_id, prefix, listener = ros_env
    ctx = _player_context(domain_id)
    try:
        cfg = PlayConfig(rate=20.0, loop=True, max_loops=2, topics=["/camera/image_raw"], prefix=prefix, delay_s=1.0)
        stats = play_bag(bag, cfg, context=ctx)
    finally:
        rclpy.try_shutdown(context=ctx)
    assert stats.passes == 2 and stats.published == {"/camera/image_raw": 2 * FRAMES}
    got = listener.got
    assert wait_for(lambda: len(got["/camera/image_raw"]) == 2 * FRAMES, 10.0)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in got["/camera/image_raw"]]
    assert stamps[FRAMES] < stamps[FRAMES - 1], "time jumps back at the loop"
    assert not got["/camera/pose"]


def test_play_stop_event(ros_env):
    _, bag, domain_id, prefix, listener = ros_env
    ctx = _player_context(domain_id)
    stop = threading.Event()
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("stats", play_bag(
        bag, PlayConfig(rate=1.0, loop=True, prefix=prefix, delay_s=0.5), context=ctx, stop=stop)))
    t.start()
    try:
        assert wait_for(lambda: len(listener.got["/camera/image_raw"]) >= 1, 10.0)
        stop.set()
        t.join(timeout=5)
        assert not t.is_alive()
    finally:
        stop.set()
        rclpy.try_shutdown(context=ctx)
    assert out["stats"].published["/camera/image_raw"] >= 1


def test_cli_play_ctrl_c(ros_env):
    """The real command in its own process: Ctrl-C (SIGINT) ends it cleanly, with no traceback."""
    _, bag, domain_id, prefix, listener = ros_env
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), PYTHONPATH=str(REPO))
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gssplat_ros.cli", "bag", "play", str(bag), "--loop", "--prefix", prefix],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert wait_for(lambda: len(listener.got["/camera/image_raw"]) >= 2 or proc.poll() is not None, 30.0)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err


def test_play_bad_input(tmp_path, capsys):
    assert main(["bag", "play", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bag not found" in err
    scene = make_scene(tmp_path / "scene", frames=1)
    write_scene_bag(scene, tmp_path / "bag")
    assert main(["bag", "play", str(tmp_path / "bag"), "--topics", "/nope"]) == 1
    assert "bag has no topic /nope" in capsys.readouterr().err
