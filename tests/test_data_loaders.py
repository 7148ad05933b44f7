"""Scene loaders (ScanNet and Replica layouts): shapes, intrinsics, class mapping, bad-data errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gssplat_ros.data import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, PALETTE, load_scene
from gssplat_ros.data.scenes import SCANNET_DEFAULT_K
from gssplat_ros.errors import DataError

W, H = 40, 30


def _pose(x: float, yaw: float = 0.0) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    T = np.eye(4)
    T[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    T[0, 3] = x
    return T


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_scannet(root: Path, n: int = 3, raw_labels: np.ndarray = None, w: int = W, h: int = H, K: bool = True) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        _png(root / "color" / f"{i}.png", rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        _png(root / "depth" / f"{i}.png", np.full((h, w), 1500 + i, np.uint16))
        lab = raw_labels if raw_labels is not None else np.ones((h, w), np.uint16)
        _png(root / "label-filt" / f"{i}.png", lab.astype(np.uint16))
        (root / "pose").mkdir(exist_ok=True)
        np.savetxt(root / "pose" / f"{i}.txt", _pose(0.1 * i))
    if K:
        (root / "intrinsic").mkdir(exist_ok=True)
        K4 = np.eye(4)
        K4[:3, :3] = [[36.0, 0, 20.0], [0, 36.0, 15.0], [0, 0, 1]]
        np.savetxt(root / "intrinsic" / "intrinsic_color.txt", K4)
    return root


def make_replica(root: Path, n: int = 3, classes: np.ndarray = None) -> Path:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        _png(root / "rgb" / f"rgb_{i}.png", rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
        _png(root / "depth" / f"depth_{i}.png", np.full((H, W), 2000, np.uint16))
        cls = classes if classes is not None else np.full((H, W), 93, np.uint8)
        _png(root / "semantic_class" / f"semantic_class_{i}.png", cls.astype(np.uint8))
        rows.append(_pose(0.2 * i).reshape(-1))
    np.savetxt(root / "traj_w_c.txt", np.array(rows))
    return root


def test_constants():
    assert len(CLASS_NAMES) == NUM_CLASSES == 20 and IGNORE_INDEX == 20
    assert PALETTE.shape == (21, 3) and PALETTE.dtype == np.uint8 and PALETTE[20].tolist() == [0, 0, 0]


def test_scannet_frame_shapes_and_intrinsics(tmp_path):
    scene = load_scene(make_scannet(tmp_path / "s"), "scannet")
    assert len(scene) == 3 and scene.poses.shape == (3, 4, 4) and scene.size == (W, H)
    f = scene.frame(1)
    assert f.image.shape == (3, H, W) and f.image.dtype == torch.float32 and 0 <= f.image.min() <= f.image.max() <= 1
    assert f.depth.shape == (H, W) and torch.allclose(f.depth, torch.tensor(1.501))
    assert f.labels.shape == (H, W) and f.labels.dtype == torch.int64
    assert f.K.shape == (3, 3) and f.K[0, 0] == 36.0
    torch.testing.assert_close(f.world_from_cam, torch.from_numpy(_pose(0.1)).float())
    half = load_scene(tmp_path / "s", "scannet", size=(20, 16)).frame(0)
    assert half.image.shape == (3, 16, 20) and half.labels.shape == (16, 20) and half.depth.shape == (16, 20)
    torch.testing.assert_close(half.K, torch.tensor([[18.0, 0, 10.0], [0, 36.0 * 16 / 30, 15.0 * 16 / 30], [0, 0, 1]]))


def test_scannet_default_intrinsics(tmp_path):
    scene = load_scene(make_scannet(tmp_path / "s", K=False), "scannet", size=(320, 240))
    K = scene.K.double()
    assert abs(K[0, 0].item() - SCANNET_DEFAULT_K[0, 0] * 320 / 1296) < 1e-3  # GSNeRF's 288.9 at 320 wide
    assert abs(K[1, 2].item() - SCANNET_DEFAULT_K[1, 2] * 240 / 968) < 1e-3


def test_scannet_label_mapping(tmp_path):
    # raw: 0 unannotated, 1 wall, 3 floor, 2 chair, 22 books (other), 27 refrigerator, 42 bathtub, 99 wardrobe
    # (otherfurniture), 41 ceiling (other), 60000 unknown
    raw = np.array([0, 1, 3, 2, 22, 27, 42, 99, 41, 60000], np.uint16)
    labels = np.tile(np.repeat(raw, 4)[None], (H, 1))
    f = load_scene(make_scannet(tmp_path / "s", raw_labels=labels), "scannet").frame(0)
    got = f.labels[0, ::4].tolist()
    names = {n: i for i, n in enumerate(CLASS_NAMES)}
    assert got == [20, names["wall"], names["floor"], names["chair"], 20, names["refrigerator"], names["bathtub"],
                   names["otherfurniture"], 20, 20]


def test_depth_and_labels_may_have_their_own_resolution(tmp_path):
    root = make_scannet(tmp_path / "s", w=80, h=60)
    _png(root / "depth" / "0.png", np.full((30, 40), 1000, np.uint16))  # like ScanNet's 640x480 depth
    f = load_scene(root, "scannet").frame(0)
    assert f.depth.shape == (60, 80) and torch.all(f.depth == 1.0)


def test_replica_loader_intrinsics_and_mapping(tmp_path):
    # Replica ids: 93 wall, 40 floor, 20 chair, 31 ceiling (other), 80 table, 54 nightstand (other)
    classes = np.tile(np.repeat(np.array([93, 40, 20, 31, 80], np.uint8), 8)[None], (H, 1))
    scene = load_scene(make_replica(tmp_path / "room_0", classes=classes), "replica")
    f = scene.frame(2)
    torch.testing.assert_close(f.K, torch.tensor([[20.0, 0, 20.0], [0, 20.0, 15.0], [0, 0, 1]]))  # hfov 90
    assert f.labels[0, ::8].tolist() == [0, 1, 4, 20, 6]
    assert torch.allclose(f.depth, torch.tensor(2.0))
    torch.testing.assert_close(f.world_from_cam, torch.from_numpy(_pose(0.4)).float())
    (tmp_path / "room_0" / "label_map.json").write_text(json.dumps({"31": "wall", "80": 7}))
    f = load_scene(tmp_path / "room_0", "auto").frame(0)
    assert f.labels[0, ::8].tolist() == [20, 20, 20, 0, 7]


# ------------------------------------------------------------------------------------------ bad data
def test_missing_file_names_the_file(tmp_path):
    root = make_scannet(tmp_path / "s")
    (root / "depth" / "1.png").unlink()
    scene = load_scene(root, "scannet")
    with pytest.raises(DataError, match=r"depth/1\.png"):
        scene.frame(1)
    with pytest.raises(DataError, match="pose"):
        (root / "pose" / "2.txt").unlink()
        load_scene(root, "scannet")


def test_size_mismatch_names_the_file(tmp_path):
    root = make_scannet(tmp_path / "s")
    _png(root / "label-filt" / "0.png", np.ones((H, W * 2), np.uint16))
    with pytest.raises(DataError, match=r"label-filt/0\.png"):
        load_scene(root, "scannet").frame(0)
    _png(root / "color" / "2.png", np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(DataError, match=r"color/2\.png"):
        load_scene(root, "scannet").frame(2)


def test_non_finite_pose(tmp_path):
    root = make_scannet(tmp_path / "s")
    bad = _pose(0.0)
    bad[0, 3] = np.inf
    np.savetxt(root / "pose" / "1.txt", bad)
    with pytest.raises(DataError, match=r"pose/1\.txt"):
        load_scene(root, "scannet")
    scene = load_scene(root, "scannet", skip_invalid_poses=True)  # GSNeRF's behaviour, opt-in
    assert scene.frame_ids == [0, 2]


def test_replica_bad_trajectory(tmp_path):
    root = make_replica(tmp_path / "r")
    np.savetxt(root / "traj_w_c.txt", np.eye(4).reshape(1, 16))
    with pytest.raises(DataError, match="traj_w_c.txt"):
        load_scene(root, "replica")
    np.savetxt(root / "traj_w_c.txt", np.full((3, 16), np.nan))
    with pytest.raises(DataError, match="traj_w_c.txt"):
        load_scene(root, "replica")


def test_not_a_scene(tmp_path):
    with pytest.raises(DataError):
        load_scene(tmp_path / "nowhere", "scannet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="color"):
        load_scene(tmp_path / "empty", "scannet")
