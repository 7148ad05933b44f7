# ruff: noqa: F722  (jaxtyping shape strings)
"""Exportable camera and rotation maths for the network: rays, unprojection, quaternions, SH rotation.

Usage:
    rays = pixel_rays(K, H, W)                         # [V, H, W, 3], z = 1, pixel centres at +0.5
    mu0 = unproject(rays, depth, world_from_cam)       # [V, H, W, 3] world
    q_world = quat_multiply(rotmat_to_quat(R)[:, None, None], q_cam)
    mu0_maps = unproject_maps(K, depth, world_from_cam)  # [V, 3, H, W]: the same points, channel-first

The network's per-pixel maths runs channel-first ([V, C, H, W], the `*_maps` functions): onnxruntime's
CPU kernels broadcast a [V, H, W, 1] factor over a [V, H, W, 3] tensor about 20x slower than a
[V, 1, H, W] factor over [V, 3, H, W] (1.26 against 0.06 ms at V=4, 160x120, one thread), and torch is
faster channel-first too.

Everything here is plain tensor arithmetic (no matrix inverse, no data-dependent control flow), so it
traces into ONNX opset 18 and TensorRT.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def _ray_planes(K: Float[Tensor, "V 3 3"], height: int, width: int) -> tuple[Tensor, Tensor]:
    """(x, y), each [V, H, W]: camera-frame ray coordinates at z = 1 through pixel centres, no K inverse."""
    dtype, device = K.dtype, K.device
    u = torch.arange(width, dtype=dtype, device=device) + 0.5  # [W]
    v = torch.arange(height, dtype=dtype, device=device) + 0.5  # [H]
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]  # [V, 1, 1]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    x = ((u[None, None, :] - cx) / fx).expand(-1, height, -1)  # [V, H, W]
    y = ((v[None, :, None] - cy) / fy).expand(-1, -1, width)
    return x, y


def pixel_rays(K: Float[Tensor, "V 3 3"], height: int, width: int) -> Float[Tensor, "V H W 3"]:
    """Camera-frame rays with z = 1 through pixel centres (u + 0.5, v + 0.5), without inverting K.

    Args:
        K: intrinsics in pixels for a height x width image (zero skew).
        height, width: image size in pixels.
    """
    x, y = _ray_planes(K, height, width)
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def rotate_points(rot: Float[Tensor, "V 3 3"], pts: Float[Tensor, "V H W 3"]) -> Float[Tensor, "V H W 3"]:
    """Apply one rotation per view to [V, H, W, 3] vectors."""
    num_views, height, width, _ = pts.shape
    flat = pts.reshape(num_views, height * width, 3)
    return torch.bmm(flat, rot.transpose(1, 2)).reshape(num_views, height, width, 3)


def unproject(
    rays: Float[Tensor, "V H W 3"], depth: Float[Tensor, "V H W"], world_from_cam: Float[Tensor, "V 4 4"]
) -> Float[Tensor, "V H W 3"]:
    """World points at z-depth `depth` (metres) along camera rays with z = 1."""
    cam = rays * depth[..., None]
    return rotate_points(world_from_cam[:, :3, :3], cam) + world_from_cam[:, None, None, :3, 3]


def rotate_maps(rot: Float[Tensor, "V 3 3"], vecs: Float[Tensor, "V 3 H W"]) -> Float[Tensor, "V 3 H W"]:
    """Apply one rotation per view to channel-first [V, 3, H, W] vector maps (one batched matmul)."""
    num_views, _, height, width = vecs.shape
    return torch.bmm(rot, vecs.reshape(num_views, 3, height * width)).reshape(num_views, 3, height, width)


def unproject_maps(
    K: Float[Tensor, "V 3 3"], depth: Float[Tensor, "V H W"], world_from_cam: Float[Tensor, "V 4 4"]
) -> Float[Tensor, "V 3 H W"]:
    """World points at z-depth `depth` through every pixel centre, channel-first (as unproject)."""
    x, y = _ray_planes(K, depth.shape[1], depth.shape[2])  # [V, H, W] each
    cam = torch.stack([x * depth, y * depth, depth], dim=1)  # [V, 3, H, W]
    return rotate_maps(world_from_cam[:, :3, :3], cam) + world_from_cam[:, :3, 3, None, None]


def channel_norm(x: Tensor, dim: int) -> Tensor:
    """Euclidean norm over `dim` (kept), as sqrt(sum(x^2)): torch's vector_norm over the channel axis of a
    [V, C, H, W] map is a strided reduction that took ~18 ms per call at V=8 160x120 on 2 CPU threads.
    The 1e-20 under the root keeps the gradient finite at x = 0 (it moves the norm by at most 1e-10)."""
    return torch.sqrt((x * x).sum(dim=dim, keepdim=True) + 1e-20)


def normalize_channels(x: Tensor, dim: int, eps: float = 1e-12) -> Tensor:
    """x / max(||x||, eps) over `dim`, like F.normalize, through channel_norm (faster on CPU maps)."""
    return x / channel_norm(x, dim).clamp(min=eps)


def quat_left_matrix(a: Float[Tensor, "N 4"]) -> Float[Tensor, "N 4 4"]:
    """L(a) with L(a) @ b = a * b (Hamilton product, wxyz): a quaternion product as one matmul."""
    aw, ax, ay, az = a.unbind(-1)
    return torch.stack(
        [
            aw, -ax, -ay, -az,
            ax, aw, -az, ay,
            ay, az, aw, -ax,
            az, -ay, ax, aw,
        ],
        dim=-1,
    ).reshape(-1, 4, 4)  # fmt: skip


def rotmat_to_quat(rot: Float[Tensor, "N 3 3"]) -> Float[Tensor, "N 4"]:
    """Rotation matrices -> unit quaternions wxyz, branch-free (Shepperd: all 4 candidates, best picked).

    Each candidate divides by its own largest component, so the pick (argmax of the four squared norms)
    is always well conditioned, including 180 degree rotations.
    """
    r00, r01, r02 = rot[:, 0, 0], rot[:, 0, 1], rot[:, 0, 2]
    r10, r11, r12 = rot[:, 1, 0], rot[:, 1, 1], rot[:, 1, 2]
    r20, r21, r22 = rot[:, 2, 0], rot[:, 2, 1], rot[:, 2, 2]
    # 4 q_i^2 for i in (w, x, y, z)
    sq = torch.stack(
        [1.0 + r00 + r11 + r22, 1.0 + r00 - r11 - r22, 1.0 - r00 + r11 - r22, 1.0 - r00 - r11 + r22], dim=-1
    )  # [N, 4]
    cands = torch.stack(
        [
            torch.stack([sq[:, 0], r21 - r12, r02 - r20, r10 - r01], dim=-1),
            torch.stack([r21 - r12, sq[:, 1], r10 + r01, r02 + r20], dim=-1),
            torch.stack([r02 - r20, r10 + r01, sq[:, 2], r21 + r12], dim=-1),
            torch.stack([r10 - r01, r02 + r20, r21 + r12, sq[:, 3]], dim=-1),
        ],
        dim=1,
    )  # [N, 4 candidates, 4]; candidate i = 4 q_i * q
    cands = cands / (2.0 * torch.sqrt(sq.clamp(min=1e-12)))[..., None]
    which = torch.arange(4, device=rot.device)
    pick = (sq.argmax(dim=-1, keepdim=True) == which).to(rot.dtype)  # [N, 4] one-hot, no OneHot op
    q = (cands * pick[..., None]).sum(dim=1)
    q = q * torch.where(q[:, :1] < 0, -1.0, 1.0)  # w >= 0
    return torch.nn.functional.normalize(q, dim=-1)


def quat_multiply(a: Float[Tensor, "*B 4"], b: Float[Tensor, "*B 4"]) -> Float[Tensor, "*B 4"]:
    """Hamilton product a * b of wxyz quaternions (rotation b first, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


def quat_to_rotmat(q: Float[Tensor, "N 4"]) -> Float[Tensor, "N 3 3"]:
    """Unit wxyz quaternions -> rotation matrices (tests and losses; not needed in the graph)."""
    w, x, y, z = torch.nn.functional.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(-1, 3, 3)  # fmt: skip


# ------------------------------------------------------------------------------------------------ SH
_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
       1.445305721320277, -0.5900435899266435)  # fmt: skip


def sh_basis(dirs: Float[Tensor, "*B 3"], degree: int) -> Float[Tensor, "*B K"]:
    """Real SH basis in the 3DGS / gsplat convention (colour = sum_k sh_k Y_k(dir) + 0.5)."""
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, _C0)]
    if degree >= 1:
        out += [-_C1 * y, _C1 * z, -_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [_C2[0] * x * y, _C2[1] * y * z, _C2[2] * (2 * zz - xx - yy), _C2[3] * x * z, _C2[4] * (xx - yy)]
    if degree >= 3:
        out += [
            _C3[0] * y * (3 * xx - yy),
            _C3[1] * x * y * z,
            _C3[2] * y * (4 * zz - xx - yy),
            _C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            _C3[4] * x * (4 * zz - xx - yy),
            _C3[5] * z * (xx - yy),
            _C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


class SHRotation(torch.nn.Module):
    """Turns SH coefficients predicted in a camera frame into world-frame coefficients.

    For Y(R^T d) = M Y(d) (R = world_from_cam rotation), world coefficients are M^T c_cam. M^T is found
    exactly by least squares on fixed sample directions: M^T = pinv(B(D)) B(D R), with the pseudo-inverse
    precomputed, so the graph only evaluates polynomials and multiplies matrices.
    """

    def __init__(self, degree: int, num_dirs: int = 64):
        super().__init__()
        self.degree = degree
        gen = torch.Generator().manual_seed(1234)
        dirs = torch.nn.functional.normalize(torch.randn(num_dirs, 3, generator=gen, dtype=torch.float64), dim=-1)
        basis = sh_basis(dirs, degree)  # [S, K]
        self.register_buffer("dirs", dirs.float(), persistent=False)
        self.register_buffer("pinv", torch.linalg.pinv(basis).float(), persistent=False)  # [K, S]

    def matrices(self, rot: Float[Tensor, "V 3 3"]) -> Float[Tensor, "V K K"]:
        """M^T per view."""
        rotated = torch.matmul(self.dirs[None], rot)  # [V, S, 3]: rows d^T R = (R^T d)^T
        return torch.matmul(self.pinv[None], sh_basis(rotated, self.degree))  # [V, K, K]

    def forward(self, sh_cam: Float[Tensor, "V N K 3"], rot: Float[Tensor, "V 3 3"]) -> Float[Tensor, "V N K 3"]:
        if self.degree == 0:
            return sh_cam
        mt = self.matrices(rot)[:, 1:, 1:]  # degree >= 1 blocks; DC stays exact
        rest = torch.matmul(mt[:, None], sh_cam[:, :, 1:, :])  # [V, N, K-1, 3]
        return torch.cat([sh_cam[:, :, :1, :], rest], dim=2)


def sh_damping(degree: int) -> Tensor:
    """Per-basis multiplier 0.1 * 0.25^l for l >= 1 (the released code's start for higher orders)."""
    mask = torch.ones((degree + 1) ** 2)
    for level in range(1, degree + 1):
        mask[level * level : (level + 1) ** 2] = 0.1 * 0.25**level
    return mask


def masked_avg_pool(depth: Float[Tensor, "V 1 H W"], factor: int) -> Float[Tensor, "V 1 h w"]:
    """Mean of the valid (> 0) depths in each factor x factor cell; 0 where none is valid."""
    valid = (depth > 0).to(depth.dtype)
    num = F.avg_pool2d(depth * valid, factor)
    den = F.avg_pool2d(valid, factor)
    return num / den.clamp(min=1e-6) * (den > 0).to(depth.dtype)
