"""Gaussians and Cameras: shapes, moves, masking, JSON contract, validation."""

import math
import subprocess
import sys

import pytest
import torch

from gssplat_ros.cameras import CameraError, Cameras, look_at, make_K, rigid_inverse
from gssplat_ros.gaussians import SH_C0, Gaussians, rgb_to_sh_dc


def random_gaussians(n=10, degree=1, features=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=g),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1),
        scales=torch.rand(n, 3, generator=g) * 0.1 + 0.01,
        opacities=torch.rand(n, generator=g),
        sh=torch.randn(n, (degree + 1) ** 2, 3, generator=g),
        features=torch.randn(n, features, generator=g) if features else None,
    )


def test_gaussians_shapes_and_validation():
    g = random_gaussians()
    assert len(g) == g.count == 10 and g.sh_degree == 1 and g.num_features == 4
    with pytest.raises(ValueError, match="quats"):
        Gaussians(g.means, g.quats[:, :3], g.scales, g.opacities, g.sh)
    with pytest.raises(ValueError, match="SH"):
        Gaussians(g.means, g.quats, g.scales, g.opacities, torch.zeros(10, 5, 3))


def test_gaussians_cat_mask_to():
    a, b = random_gaussians(5, seed=1), random_gaussians(7, seed=2)
    c = Gaussians.cat([a, b])
    assert len(c) == 12 and torch.equal(c.features[5:], b.features)
    keep = c.opacities > 0.5
    assert len(c[keep]) == int(keep.sum()) and torch.equal(c[keep].means, c.means[keep])
    assert c.to(dtype=torch.float64).means.dtype == torch.float64
    with pytest.raises(ValueError, match="features"):
        Gaussians.cat([a, random_gaussians(3, features=0)])
    assert len(Gaussians.empty(sh_degree=2, num_features=3)) == 0


def test_sh_dc_round_trip():
    rgb = torch.rand(8, 3)
    assert torch.allclose(rgb_to_sh_dc(rgb) * SH_C0 + 0.5, rgb, atol=1e-6)


def test_rigid_inverse_matches_matrix_inverse():
    pose = look_at([1.0, 2.0, 0.5], [0.0, 0.0, 0.3])
    assert torch.allclose(rigid_inverse(pose) @ pose, torch.eye(4), atol=1e-5)


def test_look_at_is_opencv():
    pose = look_at([0.0, 0.0, 0.0], [0.0, 5.0, 0.0], up=(0, 0, 1))
    assert torch.allclose(pose[:3, 2], torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)  # z forward
    assert torch.allclose(pose[:3, 1], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6)  # y down


def camera_dict(**over):
    d = {"width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 32.0, "cy": 24.0,
         "camera_to_world": torch.eye(4).tolist()}
    d.update(over)
    return d


def test_camera_json_round_trip(tmp_path):
    cams = Cameras.from_json_dict(camera_dict(camera_to_world=look_at([1, 1, 1], [0, 0, 0]).tolist()))
    cams.save_json(tmp_path / "c.json")
    back = Cameras.from_json(tmp_path / "c.json")
    assert back.width == 64 and torch.allclose(back.world_from_cam, cams.world_from_cam)


@pytest.mark.parametrize(
    "over, match",
    [
        ({"fx": 0.0}, "focal"),
        ({"fy": math.nan}, "finite"),
        ({"camera_to_world": (2 * torch.eye(4)).tolist()}, "orthonormal"),
        ({"camera_to_world": [[1, 0, 0, math.inf], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}, "non-finite"),
        ({"camera_to_world": [[1, 0, 0], [0, 1, 0]]}, "4 rows of 4"),
        ({"width": 0}, "size"),
    ],
)
def test_camera_json_rejects_bad_input(over, match):
    with pytest.raises(CameraError, match=match):
        Cameras.from_json_dict(camera_dict(**over))


def test_camera_json_missing_field():
    d = camera_dict()
    del d["cx"]
    with pytest.raises(CameraError, match="cx"):
        Cameras.from_json_dict(d)


def test_cameras_batch_and_resize():
    K = make_K(100, 100, 80, 60)
    cams = Cameras(torch.stack([K, K]), torch.stack([torch.eye(4), look_at([0, 0, 0], [0, 0, 1])]), 160, 120)
    assert len(cams) == 2 and len(cams[1]) == 1
    half = cams.resized(80, 60)
    assert half.K[0, 0, 0].item() == 50 and half.K[0, 0, 2].item() == 40


def test_core_imports_without_ros_numba_gsplat():
    code = (
        "import sys, gssplat_ros, gssplat_ros.render, gssplat_ros.pipeline, gssplat_ros.ply, "
        "gssplat_ros.window, gssplat_ros.prediction\n"
        "bad = [m for m in ('rclpy', 'numba', 'gsplat') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
