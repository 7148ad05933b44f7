"""World-frame geometry cues of the semantic branch (model/semantic_geometry.py) and the semantic-only path."""

from __future__ import annotations

import math

import pytest
import torch

from gssplat_ros.cameras import rigid_inverse
from gssplat_ros.model import GSsplatNet, ModelConfig
from gssplat_ros.model.semantic_geometry import HEIGHT_SCALE_M, quarter_geometry


def _camera(height_m: float, pitch_down_deg: float) -> torch.Tensor:
    """world_from_cam [4, 4] of an OpenCV camera at (0, 0, height) looking along +y, pitched down."""
    p = math.radians(pitch_down_deg)
    forward = torch.tensor([0.0, math.cos(p), -math.sin(p)])
    right = torch.tensor([1.0, 0.0, 0.0])
    down = torch.linalg.cross(forward, right)
    pose = torch.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, down, forward
    pose[2, 3] = height_m
    return pose


def _plane_depth(pose: torch.Tensor, K: torch.Tensor, h: int, w: int, normal, offset: float) -> torch.Tensor:
    """z-depth [1, 1, h, w] of the plane n . x = offset seen by the camera (0 where not hit in front).

    K is for the full-size image, 4x the depth map's size (as the network's H/4 depth)."""
    K = K * torch.tensor([[0.25], [0.25], [1.0]])
    u = torch.arange(w) + 0.5
    v = torch.arange(h) + 0.5
    rays = torch.stack(torch.meshgrid((u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], indexing="xy"), -1)
    rays = torch.cat([rays, torch.ones(h, w, 1)], -1)  # [h, w, 3], z = 1
    dirs = rays @ pose[:3, :3].T
    n = torch.tensor(normal, dtype=torch.float32)
    t = (offset - pose[:3, 3] @ n) / (dirs @ n)
    return torch.where(t > 0, t, torch.zeros(())).reshape(1, 1, h, w)


def test_floor_seen_from_a_pitched_camera_is_up_facing_at_height_zero():
    K = torch.tensor([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    pose = _camera(1.4, 40.0)
    depth = _plane_depth(pose, K, 12, 16, (0.0, 0.0, 1.0), 0.0)  # the floor z = 0, at quarter size
    cues = quarter_geometry(depth, K[None], pose[None], full_width=64)[0]  # [4, 12, 16]
    assert (depth > 0).all()
    assert torch.allclose(cues[0], torch.zeros(12, 16), atol=1e-4)  # world height 0
    assert torch.allclose(cues[1], torch.full((12, 16), -1.4 / HEIGHT_SCALE_M), atol=1e-4)  # below the camera
    assert torch.allclose(cues[2], torch.ones(12, 16), atol=1e-4)  # faces up
    assert torch.equal(cues[3], torch.ones(12, 16))


def test_ceiling_faces_down_and_wall_is_vertical():
    K = torch.tensor([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    up = _camera(1.0, -35.0)  # looking up at the ceiling z = 2.6
    ceiling = quarter_geometry(_plane_depth(up, K, 12, 16, (0.0, 0.0, 1.0), 2.6), K[None], up[None], 64)[0]
    assert torch.allclose(ceiling[2], -torch.ones(12, 16), atol=1e-4)
    assert torch.allclose(ceiling[0], torch.full((12, 16), 2.6 / HEIGHT_SCALE_M), atol=1e-4)
    level = _camera(1.5, 0.0)  # a wall y = 3 straight ahead
    wall = quarter_geometry(_plane_depth(level, K, 12, 16, (0.0, 1.0, 0.0), 3.0), K[None], level[None], 64)[0]
    assert wall[2].abs().max() < 1e-4
    # height grows upwards in the image: the top row is higher than the bottom row
    assert (wall[0, 0] > wall[0, -1]).all()


def test_invalid_depth_gives_all_zero_cues():
    K = torch.tensor([[40.0, 0, 32], [0, 40.0, 24], [0, 0, 1]])
    pose = _camera(1.4, 40.0)
    depth = _plane_depth(pose, K, 12, 16, (0.0, 0.0, 1.0), 0.0)
    depth[..., 3:6, 4:9] = 0.0
    cues = quarter_geometry(depth, K[None], pose[None], 64)[0]
    assert torch.equal(cues[:, 3:6, 4:9], torch.zeros(4, 3, 5))
    assert torch.isfinite(cues).all()


def _inputs(views=2, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(views, 3, h, w, generator=g)
    K = torch.tensor([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]]).repeat(views, 1, 1)
    pose = torch.stack([_camera(1.3 + 0.1 * i, 30.0) for i in range(views)])
    pose[:, 0, 3] = torch.arange(views) * 0.2
    depth = torch.rand(views, 1, h, w, generator=g) * 2 + 1.0
    return images, K, pose, rigid_inverse(pose), depth


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_geometry_embedding_starts_as_a_no_op(depth_mode):
    """Weights of a model without cues load into one with them and give the same outputs (zero init)."""
    torch.manual_seed(0)
    plain = GSsplatNet(ModelConfig.preset("tiny", depth_mode=depth_mode)).eval()
    with_cues = GSsplatNet(ModelConfig.preset("tiny", depth_mode=depth_mode, semantic_geometry=True)).eval()
    missing, unexpected = with_cues.load_state_dict(plain.state_dict(), strict=False)
    assert missing and all(k.startswith("semantic_geometry.") for k in missing) and not unexpected
    images, K, pose, inv, depth = _inputs()
    depth = depth if depth_mode == "sensor" else None
    with torch.no_grad():
        a, b = plain(images, K, pose, inv, depth), with_cues(images, K, pose, inv, depth)
    for name in ("sem_logits", "context_logits", "color_sh", "color_means", "sem_means"):
        assert torch.equal(a[name], b[name]), name


def test_cues_change_semantics_only_and_get_gradient():
    torch.manual_seed(0)
    net = GSsplatNet(ModelConfig.preset("tiny", semantic_geometry=True))
    images, K, pose, inv, depth = _inputs()
    context_logits, sem_logits = net.semantic_logits(images, K, pose, inv, depth)
    (context_logits.square().mean() + sem_logits.square().mean()).backward()
    grad = net.semantic_geometry.conv2.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # the zero-initialised output layer learns
    with torch.no_grad():
        before = net(images, K, pose, inv, depth)
        net.semantic_geometry.conv2.bias.add_(0.5)
        after = net(images, K, pose, inv, depth)
    assert not torch.equal(before["sem_logits"], after["sem_logits"])
    assert torch.equal(before["color_sh"], after["color_sh"]) and torch.equal(before["color_means"], after["color_means"])


@pytest.mark.parametrize("depth_mode", ["sensor", "estimated"])
def test_semantic_logits_equal_the_full_forward(depth_mode):
    torch.manual_seed(1)
    net = GSsplatNet(ModelConfig.preset("tiny", depth_mode=depth_mode, semantic_geometry=True)).eval()
    with torch.no_grad():
        net.semantic_geometry.conv2.weight.normal_(0, 0.1)
    images, K, pose, inv, depth = _inputs(views=3)
    depth = depth if depth_mode == "sensor" else None
    with torch.no_grad():
        full = net(images, K, pose, inv, depth)
        context_logits, sem_logits = net.semantic_logits(images, K, pose, inv, depth)
    assert torch.equal(context_logits, full["context_logits"])
    assert torch.equal(sem_logits, full["sem_logits"])
