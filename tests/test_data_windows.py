"""nearest_views, scene splits and WindowDataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gssplat_ros.data import WindowDataset, nearest_views, split_scenes
from gssplat_ros.errors import DataError
from tests.test_data_loaders import _pose, make_scannet


def test_nearest_views_translation_then_rotation():
    poses = np.stack([_pose(x) for x in (0.0, 0.5, 1.0, 1.5, 2.0)] + [_pose(1.0, math.pi)])
    # from frame 2: frames 1 and 3 at 0.5 m; frame 5 at the same spot turned around: 0.3 m/rad * pi = 0.94;
    # frames 0 and 4 at 1.0 m
    assert nearest_views(poses, poses[2], 5, exclude=2) == [1, 3, 5, 0, 4]
    as_torch = torch.from_numpy(poses).float()
    assert nearest_views(as_torch, as_torch[2], 2, exclude=[2, 1]) == [3, 5]
    assert nearest_views(poses, poses[2], 1) == [2]
    assert nearest_views(poses, poses[2], 10, exclude=2) == [1, 3, 5, 0, 4]  # fewer when fewer remain


def _scenes(root, names, n=6):
    for name in names:
        make_scannet(root / name, n=n)
    return root


def test_split_by_sorted_names(tmp_path):
    names = [f"scene{i:04d}_00" for i in range(10)]
    for n in names:
        (tmp_path / n / "color").mkdir(parents=True)
    train, val, test = (split_scenes(tmp_path, "scannet", s) for s in ("train", "val", "test"))
    assert test == names[-2:] and val == names[-3:-2] and train == names[:7]
    assert split_scenes(tmp_path, "scannet", "all") == names


def test_split_listing_files_and_leak(tmp_path):
    for n in ("a", "b", "c", "d"):
        (tmp_path / n / "color").mkdir(parents=True)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("a\nb  # comment\n")
    (tmp_path / "splits" / "test.txt").write_text("d\n")
    assert split_scenes(tmp_path, "scannet", "train") == ["a", "b"]
    assert split_scenes(tmp_path, "scannet", "val") == []
    (tmp_path / "splits" / "val.txt").write_text("d\n")
    with pytest.raises(DataError, match="test scenes"):
        split_scenes(tmp_path, "scannet", "train")


def test_replica_paper_split(tmp_path):
    for n in ("office_0", "office_1", "office_2", "office_3", "office_4", "room_0", "room_1", "room_2"):
        (tmp_path / n / "Sequence_1").mkdir(parents=True)
        (tmp_path / n / "Sequence_1" / "traj_w_c.txt").write_text("")
    assert split_scenes(tmp_path, "replica", "test") == ["office_4", "room_2"]
    assert split_scenes(tmp_path, "replica", "val") == ["office_3"]
    assert split_scenes(tmp_path, "replica", "train") == ["office_0", "office_1", "office_2", "room_0", "room_1"]


def test_window_dataset_random(tmp_path):
    root = _scenes(tmp_path, ["s0", "s1"])
    ds = WindowDataset(root, "scannet", split="all", views=3, targets=2, size=(20, 16), sampling="random", seed=3)
    assert len(ds) == 12
    item = ds[7]
    V, T = 3, 2
    shapes = {"context_images": (V, 3, 16, 20), "context_depth": (V, 1, 16, 20), "context_labels": (V, 16, 20),
              "context_K": (V, 3, 3), "context_world_from_cam": (V, 4, 4), "target_images": (T, 3, 16, 20),
              "target_depth": (T, 16, 20), "target_labels": (T, 16, 20), "target_K": (T, 3, 3),
              "target_world_from_cam": (T, 4, 4)}
    for k, s in shapes.items():
        assert tuple(item[k].shape) == s, k
    assert item["context_labels"].dtype == torch.int64 and item["scene"] == "s1"
    ctx, tgt = item["context_indices"].tolist(), item["target_indices"].tolist()
    assert tgt[0] == 1 and not set(ctx) & set(tgt) and len(set(ctx)) == V
    again = ds[7]
    assert again["context_indices"].tolist() == ctx  # same seed and epoch: same window
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["context_images"].shape == (2, V, 3, 16, 20) and len(batch["scene"]) == 2


def test_window_dataset_fixed_protocol(tmp_path):
    root = _scenes(tmp_path, ["s0"], n=8)
    ds = WindowDataset(root, "scannet", split="all", views=2, targets=1, size=(20, 16), sampling="fixed",
                       target_start=2, target_stride=3, context_stride=2)
    assert [ds.select(i)[2] for i in range(len(ds))] == [[2], [5]]
    # candidates ::2 minus targets {2, 5} = [0, 4, 6]; poses lie on a line 0.1 m apart
    assert ds.select(0)[1] == [0, 4] and ds.select(1)[1] == [4, 6]


def test_window_dataset_errors(tmp_path):
    root = _scenes(tmp_path, ["s0"], n=3)
    with pytest.raises(DataError, match="split 'val' has no scenes"):
        WindowDataset(root, "scannet", split="val", views=2, targets=1)
    with pytest.raises(DataError, match="needs 4"):
        WindowDataset(root, "scannet", split="train", views=3, targets=1)
