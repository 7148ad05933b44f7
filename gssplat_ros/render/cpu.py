"""The `cpu` renderer backend: torch projection + numba tile rasteriser, differentiable.

Usage (through the interface):
    out = render(gaussians, cameras, RenderSettings(backend="cpu"))
    out.rgb.sum().backward()      # gradients reach means, quats, scales, opacities, sh, features

Projection and SH run in torch (autograd differentiates them); the numba kernels in
`_cpu_kernels` bin, blend and back-propagate per tile. Written for numba because no CPU path of
gsplat exists and pure torch is ~40x slower at this size (see the render benchmark).
"""

from __future__ import annotations

import torch

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.render import RenderOutput, RenderSettings
from gssplat_ros.render import _cpu_kernels as kernels
from gssplat_ros.render.projection import Projected, eval_sh, project_gaussians

# 8x8 tiles: each pixel walks fewer far-away intersections than with gsplat's 16x16 CUDA tiles
# (`gssplat bench render`, 50k at 256x256: forward 107 -> 83 ms, backward 285 -> 193 ms).
CPU_TILE_SIZE = 8


class _Rasterize(torch.autograd.Function):
    """(means2d, conics, opacities, values) -> (blended values + background, alpha)."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, values, background, radii, depths, width, height, tile):
        np32 = lambda t: t.detach().to(torch.float32).contiguous().numpy()  # noqa: E731
        m2d, con, opa, val = np32(means2d), np32(conics), np32(opacities), np32(values)
        tile_start, isect = kernels.bin_gaussians(m2d, radii.numpy(), np32(depths), width, height, tile)
        out, t_final, n_used = kernels.rasterize_forward(m2d, con, opa, val, tile_start, isect, width, height, tile)
        bg = np32(background)
        out_t = torch.from_numpy(out) + torch.from_numpy(t_final)[..., None] * background.to(torch.float32)
        ctx.save_for_backward(means2d, conics, opacities, values)
        ctx.arrays = (m2d, con, opa, val, bg, tile_start, isect, t_final, n_used)
        ctx.size = (width, height, tile)
        alpha = 1.0 - torch.from_numpy(t_final)
        return out_t.to(values.dtype), alpha.to(values.dtype)

    @staticmethod
    def backward(ctx, grad_out, grad_alpha):
        means2d, conics, opacities, values = ctx.saved_tensors
        m2d, con, opa, val, bg, tile_start, isect, t_final, n_used = ctx.arrays
        width, height, tile = ctx.size
        go = grad_out.detach().to(torch.float32).contiguous().numpy()
        ga = grad_alpha.detach().to(torch.float32).contiguous().numpy()
        g_m2d, g_con, g_opa, g_val = kernels.rasterize_backward(
            m2d, con, opa, val, bg, tile_start, isect, t_final, n_used, go, ga, width, height, tile
        )
        ctx.arrays = None
        cast = lambda a, like: torch.from_numpy(a).to(like.dtype)  # noqa: E731
        return (cast(g_m2d, means2d), cast(g_con, conics), cast(g_opa, opacities), cast(g_val, values),
                None, None, None, None, None, None)


def _project_numba(means, quats, scales, K, cam_from_world, width, height, near_m, far_m, eps2d) -> Projected:
    """`project_gaussians` without autograd, in one numba pass (inference)."""
    np32 = lambda t: t.detach().to(torch.float32).contiguous().numpy()  # noqa: E731
    arrays = kernels.project_forward(
        np32(means), np32(quats), np32(scales), np32(K), np32(cam_from_world),
        width, height, float(near_m), float(far_m), float(eps2d),
    )
    means2d, conics, depths, radii, dirs = (torch.from_numpy(a) for a in arrays)
    dt = means.dtype
    return Projected(means2d.to(dt), conics.to(dt), depths.to(dt), radii, dirs.to(dt))


def render_cpu(gaussians: Gaussians, cameras: Cameras, settings: RenderSettings) -> RenderOutput:
    if gaussians.device.type != "cpu":
        raise ValueError("the cpu renderer needs CPU tensors; use backend 'gsplat' (or 'auto') on CUDA")
    g = gaussians
    degree = g.sh_degree if settings.sh_degree is None else min(settings.sh_degree, g.sh_degree)
    feats = g.features if (settings.render_features and g.features is not None) else None
    num_feat = 0 if feats is None else feats.shape[1]
    dtype = g.means.dtype
    bg = torch.zeros(3 + num_feat + 1, dtype=dtype)
    if settings.background is not None:
        bg[:3] = torch.as_tensor(settings.background, dtype=dtype)
    cam_from_world = cameras.cam_from_world.to(dtype)
    K = cameras.K.to(dtype)
    rgbs, featmaps, depths, alphas = [], [], [], []
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (g.means, g.quats, g.scales))
    project = project_gaussians if needs_grad else _project_numba
    for v in range(len(cameras)):
        proj = project(
            g.means, g.quats, g.scales, K[v], cam_from_world[v], cameras.width, cameras.height,
            settings.near_m, settings.far_m, settings.eps2d,
        )
        colors = torch.clamp_min(eval_sh(g.sh, proj.dirs, degree) + 0.5, 0.0)  # [N, 3]
        parts = [colors] + ([feats] if feats is not None else []) + [proj.depths[:, None]]
        values = torch.cat(parts, dim=-1)  # [N, 3 + D + 1]
        out, alpha = _Rasterize.apply(
            proj.means2d, proj.conics, g.opacities, values, bg, proj.radii, proj.depths.detach(),
            cameras.width, cameras.height, settings.tile_size or CPU_TILE_SIZE,
        )
        rgbs.append(out[..., :3])
        if feats is not None:
            featmaps.append(out[..., 3:3 + num_feat])
        depth_sum = out[..., -1]
        depths.append(torch.where(alpha > 0, depth_sum / alpha.clamp_min(1e-10), torch.zeros_like(alpha)))
        alphas.append(alpha)
    return RenderOutput(
        rgb=torch.stack(rgbs),
        depth=torch.stack(depths),
        alpha=torch.stack(alphas),
        features=torch.stack(featmaps) if feats is not None else None,
    )
