"""Differentiable EWA projection and SH colour in plain torch (shared by the CPU backend and tests).

Usage:
    proj = project_gaussians(gaussians, K, cam_from_world, width, height, settings)   # one camera
    colors = eval_sh(gaussians.sh, dirs, degree)                                      # [N, 3]

Semantics follow gsplat's `fully_fused_projection` (classic 3DGS): camera-space covariance
W R S S^T R^T W^T, the perspective Jacobian with x/z and y/z clamped to 1.3x the field of view,
`eps2d` pixels^2 added to the 2D covariance, radius = ceil(3 sigma_max), culling outside
[near, far], non-positive determinants and footprints entirely outside the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

# Real spherical-harmonic constants (as in 3DGS / gsplat).
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
    -0.4570457994644658, 1.445305721320277, -0.5900435899266435,
)


def eval_sh(sh: Tensor, dirs: Tensor, degree: int) -> Tensor:
    """SH colour in a viewing direction, before the +0.5 offset.

    Args:
        sh: [N, K, 3] coefficients.
        dirs: [N, 3] unit directions from the camera centre to the Gaussian, world frame.
        degree: evaluate bases up to this degree (<= the degree sh holds).
    Returns:
        [N, 3].
    """
    out = SH_C0 * sh[:, 0]
    if degree < 1:
        return out
    x, y, z = dirs[:, 0:1], dirs[:, 1:2], dirs[:, 2:3]
    out = out - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
    if degree < 2:
        return out
    xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
    out = (
        out
        + SH_C2[0] * xy * sh[:, 4]
        + SH_C2[1] * yz * sh[:, 5]
        + SH_C2[2] * (2.0 * zz - xx - yy) * sh[:, 6]
        + SH_C2[3] * xz * sh[:, 7]
        + SH_C2[4] * (xx - yy) * sh[:, 8]
    )
    if degree < 3:
        return out
    return (
        out
        + SH_C3[0] * y * (3.0 * xx - yy) * sh[:, 9]
        + SH_C3[1] * xy * z * sh[:, 10]
        + SH_C3[2] * y * (4.0 * zz - xx - yy) * sh[:, 11]
        + SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * sh[:, 12]
        + SH_C3[4] * x * (4.0 * zz - xx - yy) * sh[:, 13]
        + SH_C3[5] * z * (xx - yy) * sh[:, 14]
        + SH_C3[6] * x * (xx - 3.0 * yy) * sh[:, 15]
    )


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[N, 4] wxyz (any norm) -> [N, 3, 3]."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(-1, 3, 3)


@dataclass
class Projected:
    means2d: Tensor  # [N, 2] pixels (pixel u covers [u, u+1); its centre is u + 0.5)
    conics: Tensor  # [N, 3] inverse 2D covariance (a, b, c) = [[a, b], [b, c]]
    depths: Tensor  # [N] camera-space z, metres
    radii: Tensor  # [N] int32 pixels; 0 = culled
    dirs: Tensor  # [N, 3] unit viewing directions, world frame


def project_gaussians(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    K: Tensor,  # [3, 3]
    cam_from_world: Tensor,  # [4, 4]
    width: int,
    height: int,
    near_m: float,
    far_m: float,
    eps2d: float = 0.3,
) -> Projected:
    rot, trans = cam_from_world[:3, :3], cam_from_world[:3, 3]
    p_cam = means @ rot.T + trans  # [N, 3]
    x, y, z = p_cam.unbind(-1)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    valid = (z > near_m) & (z < far_m)
    z_safe = torch.where(valid, z, torch.ones_like(z))

    # EWA Jacobian with the screen-space clamp gsplat uses (limits 1.3x the half field of view).
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z_safe * torch.clamp(x / z_safe, -lim_x_neg, lim_x_pos)
    ty = z_safe * torch.clamp(y / z_safe, -lim_y_neg, lim_y_pos)
    zero = torch.zeros_like(z)
    jac = torch.stack(
        [fx / z_safe, zero, -fx * tx / z_safe**2, zero, fy / z_safe, -fy * ty / z_safe**2], dim=-1
    ).reshape(-1, 2, 3)

    rs = quat_to_rotmat(quats) * scales[:, None, :]  # [N, 3, 3] = R S
    cov_world = rs @ rs.transpose(1, 2)
    cov_cam = rot @ cov_world @ rot.T
    cov2d = jac @ cov_cam @ jac.transpose(1, 2)  # [N, 2, 2]
    a = cov2d[:, 0, 0] + eps2d
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + eps2d
    det = a * c - b * b
    valid = valid & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    means2d = torch.stack([fx * x / z_safe + cx, fy * y / z_safe + cy], dim=-1)
    with torch.no_grad():
        mid = 0.5 * (a + c)
        lam = mid + torch.sqrt(torch.clamp(mid * mid - det_safe, min=0.1))
        radii = torch.ceil(3.0 * torch.sqrt(lam))
        u, v = means2d[:, 0], means2d[:, 1]
        on_screen = (u + radii > 0) & (u - radii < width) & (v + radii > 0) & (v - radii < height)
        valid = valid & on_screen & (radii > 0)
        radii = torch.where(valid, radii, torch.zeros_like(radii)).to(torch.int32)

    cam_center = -rot.T @ trans
    dirs = torch.nn.functional.normalize(means - cam_center, dim=-1)
    return Projected(means2d=means2d, conics=conics, depths=z, radii=radii, dirs=dirs)


def tile_grid(width: int, height: int, tile: int) -> tuple[int, int]:
    return math.ceil(width / tile), math.ceil(height / tile)
