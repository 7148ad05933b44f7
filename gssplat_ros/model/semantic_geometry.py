# ruff: noqa: F722  (jaxtyping shape strings)
"""World-frame geometry cues for the semantic branch: height above the world floor and surface tilt.

Usage:
    geom = quarter_geometry(depth_q, K, world_from_cam, full_width)   # [V, 4, H/4, W/4]
    embed = GeometryEmbedding(in_ch=4, hidden=32, out_ch=64)           # zero-initialised output
    quarter = quarter + embed(geom)

Indoor classes are largely geometric: floors face up at height 0, tables and beds are up-facing at
0.4-0.8 m, walls, doors and windows are vertical, pictures hang at eye height. The paper injects the raw
depth map into the semantic decoder; depth alone does not say which way is up, so a small network has
to infer it. These cues give it directly, from the same depth and the camera pose:

    channel 0: world z / 3 m          (height; the world frame is z-up with the floor near z = 0, as in
                                       ScanNet and in the map/odom frames of ground robots, REP 103)
    channel 1: (world z - camera z) / 3 m   (height relative to the camera, for worlds whose origin is
                                       not on the floor)
    channel 2: n_z of the surface normal in the world, oriented towards the camera (+1 floor, -1 ceiling)
    channel 3: 1 where the depth is valid

Invalid pixels are 0 in every channel. Everything is slices, concatenations and arithmetic (no Pad, no
cross-product op, no inverse), so it exports to ONNX opset 18 and TensorRT 10.3.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.model.geometry import pixel_rays, unproject

NUM_GEOMETRY_CUES = 4
HEIGHT_SCALE_M = 3.0


def _central_difference(points: Tensor, dim: int) -> Tensor:
    """d points / d index along `dim` (central inside, one-sided at the borders), same shape."""
    size = points.shape[dim]
    first = points.narrow(dim, 1, 1) - points.narrow(dim, 0, 1)
    inner = (points.narrow(dim, 2, size - 2) - points.narrow(dim, 0, size - 2)) * 0.5
    last = points.narrow(dim, size - 1, 1) - points.narrow(dim, size - 2, 1)
    return torch.cat([first, inner, last], dim=dim)


def quarter_geometry(
    depth_quarter: Float[Tensor, "V 1 h w"],
    K: Float[Tensor, "V 3 3"],
    world_from_cam: Float[Tensor, "V 4 4"],
    full_width: int,
) -> Float[Tensor, "V 4 h w"]:
    """The cues above at the depth map's resolution; K is for the full-size image (`full_width` wide)."""
    num_views, _, height, width = depth_quarter.shape
    scale = width / full_width
    row_scale = torch.tensor([[scale], [scale], [1.0]], dtype=K.dtype, device=K.device)  # [3, 1]
    K_small = K * row_scale  # pixel centres at +0.5 scale exactly with the first two rows
    depth = depth_quarter[:, 0]  # [V, h, w]
    points = unproject(pixel_rays(K_small, height, width), depth, world_from_cam)  # [V, h, w, 3]
    valid = (depth > 0).to(depth.dtype)  # [V, h, w]

    du = _central_difference(points, 2)  # [V, h, w, 3] along image x
    dv = _central_difference(points, 1)  # along image y
    normal = torch.stack(
        [
            du[..., 1] * dv[..., 2] - du[..., 2] * dv[..., 1],
            du[..., 2] * dv[..., 0] - du[..., 0] * dv[..., 2],
            du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0],
        ],
        dim=-1,
    )  # [V, h, w, 3], unnormalised
    normal = normal / torch.sqrt((normal * normal).sum(-1, keepdim=True) + 1e-12)
    to_surface = points - world_from_cam[:, None, None, :3, 3]  # camera centre -> point
    facing_away = ((normal * to_surface).sum(-1) > 0).to(depth.dtype)  # [V, h, w]
    normal_z = normal[..., 2] * (1.0 - 2.0 * facing_away)

    height_world = points[..., 2] / HEIGHT_SCALE_M
    height_camera = (points[..., 2] - world_from_cam[:, None, None, 2, 3]) / HEIGHT_SCALE_M
    cues = torch.stack([height_world, height_camera, normal_z, torch.ones_like(depth)], dim=1)  # [V, 4, h, w]
    return cues * valid[:, None]


class GeometryEmbedding(nn.Module):
    """conv3x3 -> SiLU -> conv1x1 with a zero-initialised output: added to a feature map, it starts as a
    no-op, so a trained network gains the input without changing its outputs before fine-tuning."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, hidden, 3, 1, 1)
        self.conv2 = nn.Conv2d(hidden, out_ch, 1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, cues: Tensor) -> Tensor:
        return self.conv2(torch.nn.functional.silu(self.conv1(cues)))
