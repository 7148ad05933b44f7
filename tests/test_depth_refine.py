"""Photometric depth refinement: a local colour plane sweep around the cascade's depth."""

import math

import pytest
import torch

from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.depth import nearest_views
from gssplat_ros.model.depth_refine import refine_depth
from tests.test_model_common import make_window, net_inputs

WIDTH, HEIGHT, FOCAL, PLANE_Z = 64, 48, 60.0, 2.0


def _texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[3, ...] colour of the wall point (x, y): a sum of random sinusoids, 1-6 cycles per metre."""
    gen = torch.Generator().manual_seed(3)
    freq = 2 * math.pi * (1 + 5 * torch.rand(3, 6, 2, generator=gen))
    phase = 2 * math.pi * torch.rand(3, 6, generator=gen)
    waves = torch.sin(freq[..., 0, None, None] * x + freq[..., 1, None, None] * y + phase[..., None, None])
    return 0.5 + 0.08 * waves.sum(1)


def _wall_window(baseline_m: float = 0.3, views: int = 3):
    """Views side by side (x offsets), all looking down +z at a textured wall at z = PLANE_Z."""
    K = torch.tensor([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1.0]]).repeat(views, 1, 1)
    world_from_cam = torch.eye(4).repeat(views, 1, 1)
    world_from_cam[:, 0, 3] = baseline_m * torch.arange(views, dtype=torch.float32)
    cam_from_world = torch.linalg.inv(world_from_cam)
    u = (torch.arange(WIDTH) + 0.5 - WIDTH / 2) / FOCAL
    v = (torch.arange(HEIGHT) + 0.5 - HEIGHT / 2) / FOCAL
    images = torch.stack([
        _texture(world_from_cam[i, 0, 3] + PLANE_Z * u[None, :], PLANE_Z * v[:, None].expand(HEIGHT, WIDTH))
        for i in range(views)
    ])  # [V, 3, H, W]
    return images, K, world_from_cam, cam_from_world


def _refine(depth, images, K, wfc, cfw, planes=17, rel_range=0.4, radius=1):
    nbrs = nearest_views(wfc, images.shape[0] - 1)
    return refine_depth(depth, images, K, wfc, cfw, nbrs, planes, rel_range, radius)


@pytest.mark.parametrize("start_m", [2.5, 1.6])
def test_a_wrong_depth_moves_to_the_wall(start_m):
    images, K, wfc, cfw = _wall_window()
    start = torch.full((3, 1, HEIGHT, WIDTH), start_m)
    refined = _refine(start, images, K, wfc, cfw)
    # the centre view sees the wall in both neighbours; the error falls from 20-25% to about 1%
    rel_error = (refined[1] - PLANE_Z).abs() / PLANE_Z
    assert rel_error.median() < 0.02, rel_error.median()
    assert (rel_error < 0.05).float().mean() > 0.9


def test_a_pixel_no_neighbour_sees_keeps_its_depth():
    images, K, wfc, cfw = _wall_window()
    wfc_away = wfc.clone()
    wfc_away[1:, :3, :3] = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))  # the neighbours look the other way
    start = torch.full((3, 1, HEIGHT, WIDTH), 2.5)
    refined = _refine(start, images, K, wfc_away, torch.linalg.inv(wfc_away))
    torch.testing.assert_close(refined[0], start[0])


def test_the_gradient_passes_straight_through():
    images, K, wfc, cfw = _wall_window()
    start = torch.full((3, 1, HEIGHT, WIDTH), 2.5, requires_grad=True)
    refined = _refine(start, images, K, wfc, cfw)
    (refined * torch.arange(WIDTH, dtype=torch.float32)).sum().backward()
    torch.testing.assert_close(start.grad, torch.arange(WIDTH, dtype=torch.float32).expand(3, 1, HEIGHT, WIDTH))


def test_the_network_refines_only_its_output_depth():
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", depth_mode="estimated", photometric_cost=True)
    plain = GSsplatNet(cfg).eval()
    refined = GSsplatNet(cfg.replace(depth_refine_planes=9)).eval()
    refined.load_state_dict(plain.state_dict())  # no new weights
    images, K, wfc, cfw, _ = net_inputs(make_window(num_views=3, height=48, width=64), with_depth=False)
    with torch.no_grad():
        a, b = plain(images, K, wfc, cfw), refined(images, K, wfc, cfw)
    for level_a, level_b in zip(a["depth_levels"], b["depth_levels"]):  # the depth loss reads these
        torch.testing.assert_close(level_a, level_b)
    assert not torch.allclose(a["depth"], b["depth"])
    ratio = b["depth"] / a["depth"]
    assert ratio.min() >= 1 / 1.4 - 1e-4 and ratio.max() <= 1.4 + 1e-4  # within the default +-40%


@pytest.mark.parametrize("field, value", [("depth_refine_planes", 2), ("depth_refine_range", 1.0),
                                          ("depth_refine_radius", -1)])
def test_bad_refinement_settings_name_the_fields(field, value):
    settings = {"depth_refine_planes": 17, field: value}
    with pytest.raises(ValueError, match="depth_refine_planes"):
        ModelConfig.preset("tiny", depth_mode="estimated", **settings)
