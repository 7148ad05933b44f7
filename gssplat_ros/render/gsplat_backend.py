"""The `gsplat` renderer backend (CUDA): a thin adapter over `gsplat.rasterization`.

SH colour is evaluated with our own `eval_sh` (the same code the CPU backend uses) and passed to
gsplat as per-camera colours, concatenated with the feature channels, in render mode "RGB+ED"
(expected depth as the last channel). gsplat is imported on first use, so the core never needs it.
Known difference: gsplat builds after 1.0 clamp alpha at 0.999 where classic 3DGS (and our CPU
backend) clamp at 0.99; images differ only where a single Gaussian is nearly opaque.
"""

from __future__ import annotations

import torch

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import Gaussians
from gssplat_ros.render import RenderOutput, RenderSettings
from gssplat_ros.render.projection import eval_sh


def render_gsplat(gaussians: Gaussians, cameras: Cameras, settings: RenderSettings) -> RenderOutput:
    try:
        from gsplat import rasterization
    except ImportError as exc:  # pragma: no cover - needs the optional CUDA dependency
        raise RuntimeError(f"renderer backend 'gsplat' needs the gsplat package: {exc}") from None
    g = gaussians
    if g.device.type != "cuda":
        raise ValueError("renderer backend 'gsplat' needs CUDA tensors; use backend 'cpu' for CPU data")
    degree = g.sh_degree if settings.sh_degree is None else min(settings.sh_degree, g.sh_degree)
    feats = g.features if (settings.render_features and g.features is not None) else None
    num_feat = 0 if feats is None else feats.shape[1]
    cams = cameras.to(g.device, g.dtype)
    centers = cams.centers  # [V, 3]
    dirs = torch.nn.functional.normalize(g.means[None] - centers[:, None], dim=-1)  # [V, N, 3]
    colors = torch.stack([torch.clamp_min(eval_sh(g.sh, dirs[v], degree) + 0.5, 0.0) for v in range(len(cams))])
    if feats is not None:
        colors = torch.cat([colors, feats[None].expand(len(cams), -1, -1)], dim=-1)  # [V, N, 3 + D]
    backgrounds = None
    if settings.background is not None:
        backgrounds = torch.zeros(len(cams), 3 + num_feat, device=g.device, dtype=g.dtype)
        backgrounds[:, :3] = torch.as_tensor(settings.background, device=g.device, dtype=g.dtype)
    out, alphas, _ = rasterization(
        means=g.means,
        quats=g.quats,
        scales=g.scales,
        opacities=g.opacities,
        colors=colors,
        viewmats=cams.cam_from_world,
        Ks=cams.K,
        width=cams.width,
        height=cams.height,
        near_plane=settings.near_m,
        far_plane=settings.far_m,
        eps2d=settings.eps2d,
        packed=False,
        tile_size=settings.tile_size or 16,
        backgrounds=backgrounds,
        render_mode="RGB+ED",
        rasterize_mode="classic",
    )
    # out: [V, H, W, 3 + D + 1]; alphas: [V, H, W, 1]
    alpha = alphas[..., 0]
    return RenderOutput(
        rgb=out[..., :3],
        depth=torch.where(alpha > 0, out[..., -1], torch.zeros_like(alpha)),
        alpha=alpha,
        features=out[..., 3:3 + num_feat] if feats is not None else None,
    )
