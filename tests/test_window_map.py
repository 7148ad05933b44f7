"""Keyframe window (selection, resize, validation) and the fused Gaussian map."""

import numpy as np
import pytest
import torch

from gssplat_ros.cameras import look_at
from gssplat_ros.gaussian_map import GaussianMap
from gssplat_ros.window import Frame, FrameError, KeyframeWindow
from tests.test_core_types import random_gaussians


def frame(stamp, x=0.0, yaw_target=(0.0, 0.0, 5.0), w=320, h=240, depth=True):
    pose = look_at([x, 0.0, 0.0], yaw_target, up=(0, -1, 0)).numpy().astype(np.float64)
    img = np.random.default_rng(stamp).integers(0, 255, (h, w, 3), dtype=np.uint8)
    K = np.array([[200.0, 0, w / 2], [0, 200.0, h / 2], [0, 0, 1]])
    d = np.full((h, w), 2.0, np.float32) if depth else None
    return Frame(stamp_ns=stamp, image=img, K=K, world_from_cam=pose, depth=d)


def test_keyframe_selection_by_motion():
    win = KeyframeWindow(size=3, width=160, height=128, min_translation_m=0.1, min_rotation_deg=10)
    assert win.offer(frame(1, 0.0))
    assert not win.offer(frame(2, 0.05))  # moved 5 cm < 10 cm
    assert win.offer(frame(3, 0.2))
    assert win.offer(frame(4, 0.2, yaw_target=(3.0, 0.0, 5.0)))  # turned ~31 degrees
    assert win.offer(frame(5, 0.4))
    snap = win.snapshot()
    assert len(snap) == 3 and [k.stamp_ns for k in snap.keyframes] == [3, 4, 5]


def test_resize_scales_intrinsics_and_depth():
    win = KeyframeWindow(size=2, width=160, height=128)
    win.offer(frame(1))
    kf = win.snapshot().latest
    assert kf.image.shape == (3, 128, 160) and kf.depth.shape == (1, 128, 160)
    assert kf.K[0, 0].item() == pytest.approx(100.0) and kf.K[1, 1].item() == pytest.approx(200 * 128 / 240)
    assert kf.K[0, 2].item() == pytest.approx(80.0)


def test_invalid_depth_values_become_zero():
    f = frame(1)
    f.depth[0, :10] = np.nan
    f.depth[1, :10] = 0.0
    win = KeyframeWindow(size=2, width=320, height=240)
    win.offer(f)
    d = win.snapshot().latest.depth[0]
    assert torch.isfinite(d).all() and (d[0, :10] == 0).all() and (d[1, :10] == 0).all()


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda f: setattr(f, "K", np.zeros((3, 3))), "bad_intrinsics"),
        (lambda f: f.world_from_cam.__setitem__((0, 3), np.nan), "bad_pose"),
        (lambda f: f.world_from_cam.__setitem__((slice(0, 3), 0), 2 * f.world_from_cam[:3, 0]), "bad_pose"),
        (lambda f: setattr(f, "depth", np.zeros((10, 10), np.float32)), "depth_size_mismatch"),
        (lambda f: setattr(f, "image", np.zeros((240, 320), np.uint8)), "bad_image"),
    ],
)
def test_bad_frames_raise_with_reason(mutate, reason):
    f = frame(1)
    mutate(f)
    with pytest.raises(FrameError) as err:
        KeyframeWindow(size=2).offer(f)
    assert err.value.reason == reason


def test_stale_and_duplicate_stamps_rejected_then_reset():
    win = KeyframeWindow(size=2)
    win.offer(frame(10))
    for stamp in (10, 5):
        with pytest.raises(FrameError) as err:
            win.offer(frame(stamp, 1.0))
        assert err.value.reason == "stale_stamp"
    win.reset()
    assert win.offer(frame(5)) and len(win) == 1


def test_too_large_image_rejected():
    with pytest.raises(FrameError) as err:
        KeyframeWindow(size=2, max_pixels=1000).offer(frame(1))
    assert err.value.reason == "image_too_large"


def test_map_dedup_newest_wins_and_bounded():
    gmap = GaussianMap(voxel_m=0.5, max_gaussians=100)
    a = random_gaussians(1)
    a.means[:] = torch.tensor([[0.1, 0.1, 0.1]])
    b = random_gaussians(1, seed=3)
    b.means[:] = torch.tensor([[0.2, 0.2, 0.2]])  # same voxel as a
    gmap.update(a)
    gmap.update(b)
    assert len(gmap) == 1 and torch.equal(gmap.gaussians().sh, b.sh)
    far = random_gaussians(300, seed=4)
    far.means[:] = torch.arange(300).float()[:, None] * torch.tensor([1.0, 0.0, 0.0]) + 10
    gmap.update(far)
    assert len(gmap) == 100
    # the newest window survives the cap; the old voxel near the origin was evicted
    assert (gmap.gaussians().means[:, 0] >= 10).all()


def test_map_save_ply(tmp_path):
    from gssplat_ros.ply import load_ply

    gmap = GaussianMap(voxel_m=0.01)
    with pytest.raises(ValueError, match="empty"):
        gmap.save_ply(tmp_path / "m.ply")
    gmap.update(random_gaussians(30))
    assert gmap.save_ply(tmp_path / "m.ply") == len(load_ply(tmp_path / "m.ply"))
