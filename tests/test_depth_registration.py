"""depth_registration: a plane seen by a depth camera lands at the right depth in a shifted colour camera."""

import numpy as np

from gssplat_ros.depth_registration import register_depth


def K_of(f: float, w: int, h: int) -> np.ndarray:
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])


def rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def plane_depth(K: np.ndarray, size, normal: np.ndarray, offset: float) -> np.ndarray:
    """z-depth image of the plane {X : normal . X = offset} (camera frame): [H, W]."""
    w, h = size
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.linalg.solve(K, np.stack([u, v, np.ones_like(u)], 0).reshape(3, -1).astype(np.float64))  # z = 1
    z = offset / (normal @ rays)
    return z.reshape(h, w)


def test_tilted_plane_registers_into_a_shifted_rotated_colour_camera():
    depth_size, color_size = (160, 120), (320, 240)  # a lower-resolution depth camera, as on most RGB-D heads
    K_d, K_c = K_of(120.0, *depth_size), K_of(250.0, *color_size)
    color_from_depth = np.eye(4)
    color_from_depth[:3, :3] = rot_y(4.0)
    color_from_depth[:3, 3] = [-0.05, 0.01, 0.0]  # 5 cm baseline
    # The plane in the depth frame: tilted, 2 m away on the axis.
    n_d = np.array([0.2, -0.1, 1.0])
    n_d /= np.linalg.norm(n_d)
    d_d = 2.0 * n_d[2]
    depth = plane_depth(K_d, depth_size, n_d, d_d)
    # The same plane in the colour frame: n_c = R n_d, d_c = d_d + n_c . t.
    n_c = color_from_depth[:3, :3] @ n_d
    d_c = d_d + n_c @ color_from_depth[:3, 3]
    expected = plane_depth(K_c, color_size, n_c, d_c)

    got = register_depth(depth.astype(np.float32), K_d, K_c, color_from_depth, color_size)
    assert got.shape == (240, 320) and got.dtype == np.float32
    filled = got > 0
    interior = np.zeros_like(filled)
    interior[20:-20, 30:-30] = True
    assert filled[interior].all()  # corner splatting leaves no holes from the coarser depth camera
    # Each colour pixel takes the z of a depth pixel centre within its footprint: on this plane the z
    # changes by < 1 cm per depth pixel, so 1.5 cm bounds the error.
    assert np.abs(got[interior] - expected[interior]).max() < 0.015
    # Rotated by 4 degrees, the colour camera sees past the depth camera's left edge: no depth invented there.
    assert not filled[:, :8].any()


def test_nearest_surface_wins_and_invalid_depth_is_ignored():
    size = (64, 48)
    K = K_of(60.0, *size)
    depth = np.full((48, 64), 3.0, np.float32)
    depth[20:28, 28:36] = 1.0  # a box in front of the wall
    depth[0:4, 0:4] = 0.0  # invalid
    depth[5, 5] = np.nan
    color_from_depth = np.eye(4)
    color_from_depth[:3, 3] = [-0.1, 0.0, 0.0]  # 10 cm baseline: the box's projection shifts over the wall
    got = register_depth(depth, K, K, color_from_depth, size)
    # The box (1 m) shifts 6 px, the wall (3 m) 2 px: the pixels where both land keep the box.
    assert np.isclose(got[24, 24], 1.0) and np.isclose(got[24, 29], 1.0)
    assert np.isclose(got[24, 40], 3.0)
    assert (got[0:4, 0:2] == 0).all()  # nothing projects there: invalid pixels left a hole
    assert np.isfinite(got).all()
    assert register_depth(np.zeros((48, 64), np.float32), K, K, np.eye(4), size).max() == 0.0
