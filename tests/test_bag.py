"""`gssplat bag write-scene` and the bag -> Frame reader: read back with rosbags, no ROS graph."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image
from rosbags.rosbag2 import Reader

from gssplat_ros.bags import msgs
from gssplat_ros.bags.frames import FrameTopics, SyncStats, iter_frames, open_bag, resolve_topics
from gssplat_ros.bags.scene_bag import SceneBagConfig, write_scene_bag
from gssplat_ros.cli import main
from gssplat_ros.errors import DataError
from tests.bag_helpers import H, K, W, make_replica_scene, make_scene, scene_pose

TOPICS = {
    "/camera/image_raw": msgs.IMAGE,
    "/camera/camera_info": msgs.CAMERA_INFO,
    "/camera/pose": msgs.POSE_STAMPED,
    "/camera/depth": msgs.IMAGE,
    "/tf": msgs.TF_MESSAGE,
}


def read_all(bag):
    out = {}
    with Reader(bag) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, msgs.deserialize(raw, conn.msgtype)))
        types = {c.topic: c.msgtype for c in reader.connections}
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    return out, types, qos


@pytest.mark.parametrize("storage,depth_enc", [("mcap", "32FC1"), ("sqlite3", "16UC1")])
def test_write_scene_round_trip(tmp_path, storage, depth_enc):
    scene = make_scene(tmp_path / "scene", frames=4)
    bag = tmp_path / "bag"
    rc = main(["bag", "write-scene", str(scene), str(bag), "--format", storage, "--rate", "5",
               "--depth-encoding", depth_enc])
    assert rc == 0
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 8
    assert meta["storage_identifier"] == storage

    data, types, qos = read_all(bag)
    assert types == TOPICS
    assert all(len(v) == 4 for v in data.values())
    assert all(q and q[0].reliability.name == "RELIABLE" for q in qos.values())
    for topic, items in data.items():
        stamps = [msgs.stamp_ns_of(m.transforms[0].header if topic == "/tf" else m.header) for _, m in items]
        assert [t for t, _ in items] == stamps, "bag time equals header stamp"
        assert all(b - a == 200_000_000 for a, b in zip(stamps, stamps[1:])), "5 Hz, monotonic"
        assert stamps[0] == 1000 * 10**9

    for i, (_, img) in enumerate(data["/camera/image_raw"]):
        assert (img.encoding, img.width, img.height, img.step) == ("rgb8", W, H, 3 * W)
        assert img.header.frame_id == "camera_optical"
        expected = np.asarray(Image.open(scene / "color" / f"{i}.png"))
        np.testing.assert_array_equal(msgs.image_from_msg(img), expected)  # bytes round-trip exactly
        mm = np.asarray(Image.open(scene / "depth" / f"{i}.png")).astype(np.float32)
        depth_msg = data["/camera/depth"][i][1]
        assert depth_msg.encoding == depth_enc
        np.testing.assert_allclose(msgs.depth_from_msg(depth_msg), mm / 1000.0, rtol=1e-6)
        _, pose = data["/camera/pose"][i]
        assert pose.header.frame_id == "map"
        # float64 message fields; 1e-9 covers the quaternion round trip
        np.testing.assert_allclose(msgs.matrix_from_pose_msg(pose.pose), scene_pose(i), atol=1e-6)
        _, tf = data["/tf"][i]
        tfs = tf.transforms[0]
        assert (tfs.header.frame_id, tfs.child_frame_id) == ("map", "camera_optical")
        assert tfs.transform.translation.x == pytest.approx(pose.pose.position.x)
        _, info = data["/camera/camera_info"][i]
        np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), K)
        assert (info.width, info.height) == (W, H)


def test_write_scene_resize_and_jpg(tmp_path):
    scene = make_scene(tmp_path / "scene", frames=2, jpg=True, depth=False)
    (scene / "depth").rmdir()
    stats = write_scene_bag(scene, tmp_path / "bag", SceneBagConfig(size=(16, 12)))
    assert stats.frames == 2 and "/camera/depth" not in stats.counts
    data, types, _ = read_all(tmp_path / "bag")
    img = data["/camera/image_raw"][0][1]
    assert (img.width, img.height) == (16, 12)
    np.testing.assert_allclose(np.asarray(data["/camera/camera_info"][0][1].k).reshape(3, 3)[:2], K[:2] / 2)


def test_write_scene_skips_invalid_pose(tmp_path):
    scene = make_scene(tmp_path / "scene", frames=3)
    np.savetxt(scene / "pose" / "1.txt", np.full((4, 4), -np.inf))  # ScanNet's lost-tracking marker
    stats = write_scene_bag(scene, tmp_path / "bag")
    assert stats.frames == 2 and stats.skipped == ["1: invalid pose"]


def test_write_scene_bad_input(tmp_path, capsys):
    assert main(["bag", "write-scene", str(tmp_path / "nope"), str(tmp_path / "bag")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "scene directory not found" in err
    scene = make_scene(tmp_path / "scene", frames=1)
    (tmp_path / "exists").mkdir()
    assert main(["bag", "write-scene", str(scene), str(tmp_path / "exists")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_frames_sync(tmp_path):
    scene = make_scene(tmp_path / "scene", frames=4)
    write_scene_bag(scene, tmp_path / "bag")
    stats = SyncStats()
    with open_bag(tmp_path / "bag") as reader:
        topics = resolve_topics(reader, FrameTopics(), depth="auto")
        items = list(iter_frames(reader, topics, slop_ns=0, stats=stats))  # exact stamps match at zero slop
    assert len(items) == 4 and stats.frames == 4 and not stats.dropped
    f = items[2].frame
    assert f.image.shape == (H, W, 3) and f.depth.shape == (H, W) and f.depth[0, 0] == 0
    np.testing.assert_allclose(f.world_from_cam, scene_pose(2), atol=1e-6)
    assert (items[0].camera_frame_id, items[0].world_frame_id) == ("camera_optical", "map")
    with open_bag(tmp_path / "bag") as reader:
        topics = resolve_topics(reader, FrameTopics(), depth="estimated")
        assert topics.depth is None
        assert all(i.frame.depth is None for i in iter_frames(reader, topics))


def test_frames_nearest_within_slop(tmp_path):
    """Poses 5 ms after the images match with a 10 ms slop, and are dropped with 1 ms."""
    writer_path = tmp_path / "bag"
    from gssplat_ros.bags.scene_bag import add_topic, open_writer

    w = open_writer(writer_path, "mcap")
    ci, cc, cp = (add_topic(w, t, ty) for t, ty in
                  [("/camera/image_raw", msgs.IMAGE), ("/camera/camera_info", msgs.CAMERA_INFO),
                   ("/camera/pose", msgs.POSE_STAMPED)])
    img = np.zeros((H, W, 3), np.uint8)
    for i in range(3):
        t = (10 + i) * 10**9
        w.write(cc, t, msgs.serialize(msgs.camera_info_msg(K, W, H, t, "cam")))
        w.write(ci, t, msgs.serialize(msgs.image_msg(img, t, "cam")))
        w.write(cp, t + 5_000_000, msgs.serialize(msgs.pose_stamped_msg(scene_pose(i), t + 5_000_000, "map")))
    w.close()
    for slop, expected in [(10_000_000, 3), (1_000_000, 0)]:
        stats = SyncStats()
        with open_bag(writer_path) as reader:
            n = len(list(iter_frames(reader, resolve_topics(reader, FrameTopics()), slop_ns=slop, stats=stats)))
        assert n == expected
        assert stats.dropped.get("no_pose", 0) == 3 - expected


def test_open_bag_errors(tmp_path):
    with pytest.raises(DataError, match="bag not found"):
        open_bag(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no metadata.yaml"):
        open_bag(tmp_path / "empty")
    scene = make_scene(tmp_path / "scene", frames=1)
    write_scene_bag(scene, tmp_path / "bag", SceneBagConfig(with_depth=False))
    with open_bag(tmp_path / "bag") as reader:
        with pytest.raises(DataError, match="no depth topic '/camera/depth'"):
            resolve_topics(reader, FrameTopics(), depth="sensor")
        with pytest.raises(DataError, match="no pose topic '/odom'.*it has: /camera/camera_info"):
            resolve_topics(reader, FrameTopics(pose="/odom"))


def test_write_replica_scene(tmp_path):
    """Replica (Semantic-NeRF layout) goes through the data package's loader; pixels and depth stay exact."""
    pytest.importorskip("gssplat_ros.data.scenes", reason="gssplat_ros.data has no scene loader yet")
    scene = make_replica_scene(tmp_path / "replica", frames=3)
    assert main(["bag", "write-scene", str(scene), str(tmp_path / "bag")]) == 0
    data, types, _ = read_all(tmp_path / "bag")
    assert types == TOPICS and len(data["/camera/image_raw"]) == 3
    expected = np.asarray(Image.open(scene / "rgb" / "rgb_1.png"))
    np.testing.assert_array_equal(msgs.image_from_msg(data["/camera/image_raw"][1][1]), expected)
    mm = np.asarray(Image.open(scene / "depth" / "depth_1.png")).astype(np.float32)
    np.testing.assert_allclose(msgs.depth_from_msg(data["/camera/depth"][1][1]), mm / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(msgs.matrix_from_pose_msg(data["/camera/pose"][2][1].pose), scene_pose(2), atol=1e-6)


def test_offline_bag_modules_import_without_rclpy():
    """write-scene, the frame reader, process and the cloud layout are ROS-free (rclpy only in ros/bag.py)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('rclpy', 'rosidl_runtime_py', 'sensor_msgs', 'geometry_msgs'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import gssplat_ros.cloud_layout, gssplat_ros.bags.msgs, gssplat_ros.bags.scene_bag\n"
        "import gssplat_ros.bags.frames, gssplat_ros.bags.process\n"
        "import gssplat_ros.commands.bag_cmd, gssplat_ros.commands.process_cmd\n"
    )
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
