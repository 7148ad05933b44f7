"""The forward-warp baseline of `gssplat eval` (gssplat_ros/baselines.py)."""

import numpy as np
import torch

from gssplat_ros.baselines import fill_holes, forward_warp
from gssplat_ros.cameras import look_at, make_K
from gssplat_ros.metrics import psnr

W, H = 64, 48
K = make_K(50.0, 50.0, W / 2, H / 2)


def _pose(x=0.0, y=0.0, z=0.0):
    """Camera at (x, y, z) looking down +z of the world (camera axes = world axes)."""
    pose = torch.eye(4)
    pose[:3, 3] = torch.tensor([x, y, z])
    return pose


def _plane_view(pose, plane_z, texture):
    """Image and depth of a fronto-parallel plane z = plane_z whose colour is texture(world x, world y)."""
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    cx, cy = pose[:2, 3].numpy()
    depth = plane_z - pose[2, 3].item()
    wx = cx + (u - W / 2) / 50.0 * depth
    wy = cy + (v - H / 2) / 50.0 * depth
    image = np.moveaxis(texture(wx, wy), -1, 0)  # [3, H, W]
    return torch.from_numpy(image).float(), torch.full((H, W), float(depth))


def _smooth_texture(x, y):
    return np.stack([0.5 + 0.4 * np.sin(3 * x), 0.5 + 0.4 * np.cos(4 * y), 0.5 + 0.3 * np.sin(2 * x + 3 * y)], -1)


def test_warping_a_view_into_itself_reproduces_it():
    import tempfile

    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset  # a real room: edges and occlusions
    from gssplat_ros.data.scenes import load_scene

    with tempfile.TemporaryDirectory() as root:
        generate_dataset(GenerateConfig(out=root, scenes=1, frames=2, width=W, height=H, seed=3))
        frame = load_scene(f"{root}/scene0000_00", "scannet").frame(0)
    rgb, covered = forward_warp(frame.image[None], frame.depth[None], frame.K[None], frame.world_from_cam[None],
                                frame.K, frame.world_from_cam, W, H, fill_iterations=0)
    valid = frame.depth.numpy() > 0
    assert covered[valid].all()
    assert psnr(rgb, frame.image.permute(1, 2, 0).numpy(), valid) > 40


def test_two_views_of_a_plane_warp_into_a_third():
    target = _pose(0.0)
    gt, _ = _plane_view(target, 2.0, _smooth_texture)
    views = [_plane_view(_pose(x), 2.0, _smooth_texture) for x in (-0.15, 0.15)]  # left and right of the target
    images, depth = torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])
    poses = torch.stack([_pose(-0.15), _pose(0.15)])
    rgb, covered = forward_warp(images, depth, K.expand(2, 3, 3), poses, K, target, W, H)
    assert covered.all()  # together the two views see everything the target sees
    assert psnr(rgb, gt.permute(1, 2, 0).numpy()) > 35
    # one view alone leaves the strip only the other one saw uncovered (0), not invented
    rgb1, covered1 = forward_warp(images[:1], depth[:1], K[None], poses[:1], K, target, W, H, fill_iterations=0)
    # (the left view, 0.15 m at 2 m with f = 50 px: a 3.75-pixel shift, so the last 3 columns are left for the other)
    assert (~covered1[:, -3:]).all() and covered1[:, :-4].all() and (rgb1[~covered1] == 0).all()
    assert psnr(rgb1, gt.permute(1, 2, 0).numpy(), covered1) > 35


def test_the_nearer_surface_wins_whatever_the_view_order():
    target = _pose(0.0)
    red, near = _plane_view(target, 1.0, lambda x, y: np.stack([np.ones_like(x), 0 * x, 0 * x], -1))
    blue, far = _plane_view(target, 3.0, lambda x, y: np.stack([0 * x, 0 * x, np.ones_like(x)], -1))
    near = near.clone()
    near[:, : W // 2] = 0  # the near surface covers the right half only
    for order in ((0, 1), (1, 0)):
        images = torch.stack([red, blue])[list(order)]
        depth = torch.stack([near, far])[list(order)]
        rgb, covered = forward_warp(images, depth, K.expand(2, 3, 3), torch.stack([target, target]), K, target, W, H)
        assert covered.all()
        assert np.allclose(rgb[:, W // 2 + 1:], [1, 0, 0])  # red in front where it exists
        assert np.allclose(rgb[:, : W // 2 - 1], [0, 0, 1])  # blue where nothing is in front
    # seen obliquely from the side, the near half still hides the far plane behind it (centre ray: x = 0.4 at z = 1)
    side = look_at((0.6, 0.0, 0.0), (0.2, 0.0, 2.0), up=(0.0, -1.0, 0.0))
    rgb, _ = forward_warp(torch.stack([red, blue]), torch.stack([near, far]), K.expand(2, 3, 3),
                          torch.stack([target, target]), K, side, W, H)
    assert np.allclose(rgb[H // 2, W // 2], [1, 0, 0])


def test_fill_holes_takes_the_median_of_covered_neighbours():
    rgb = np.zeros((5, 5, 3))
    rgb[..., 0] = np.arange(25).reshape(5, 5)
    covered = np.ones((5, 5), bool)
    covered[2, 2] = False
    filled, now = fill_holes(rgb, covered, 1)
    assert now.all() and filled[2, 2, 0] == np.median([6, 7, 8, 11, 13, 16, 17, 18])
    assert (filled[covered] == rgb[covered]).all()
