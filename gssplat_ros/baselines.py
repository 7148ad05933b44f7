"""A forward-warp baseline: the context views' RGB-D splatted into the query view.

Usage:
    rgb, covered = forward_warp(images, depth, K, world_from_cam, target_K, target_world_from_cam, W, H)
    # rgb [H, W, 3] in 0-1 (0 where nothing landed), covered [H, W] bool

It is the bar the model has to clear in `gssplat eval`: it knows nothing but the same inputs the model gets
(colours, depth, cameras) and re-projects them, so any dB the model loses against it is observation thrown away.
Kept honest rather than a straw man:
- sub-pixel: each source pixel splats into the 4 target pixels around where it lands, with bilinear weights,
  so a pure translation does not alias into nearest-pixel stair steps;
- z-buffered: a target pixel keeps only the splats of its front-most surface (within `depth_tolerance`,
  relative), where the front is decided by splats that carry at least `min_weight` of a pixel, so the thin
  bilinear fringe of a foreground edge does not hide the background it barely touches;
- small holes (cracks between splats where the target is closer or more oblique than the source) are filled
  from their covered 3x3 neighbours (per-channel median), `fill_iterations` rings deep.

Written here (numpy + torch scatter ops) because no package installable here splats RGB-D with a z-buffer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DEPTH_TOLERANCE = 0.03  # relative: splats within 3% of the front-most depth blend; farther ones are occluded
MIN_FRONT_WEIGHT = 0.1  # bilinear weight a splat needs to decide which surface is in front
FILL_ITERATIONS = 2  # hole-filling rings (3x3 median of covered neighbours each)


def _tensor(x, dtype=torch.float64) -> Tensor:
    return torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x), dtype=dtype)


def forward_warp(images, depth, K, world_from_cam, target_K, target_world_from_cam, width: int, height: int, *,
                 depth_tolerance: float = DEPTH_TOLERANCE, min_weight: float = MIN_FRONT_WEIGHT,
                 fill_iterations: int = FILL_ITERATIONS) -> tuple[np.ndarray, np.ndarray]:
    """The context views' colours warped into one target camera.

    Args:
        images: [V, 3, h, w] RGB in 0-1 (h, w may differ from the target's height, width).
        depth: [V, h, w] or [V, 1, h, w] z-depth in metres, 0 (or non-finite) = invalid, not splatted.
        K: [V, 3, 3] source intrinsics for (w, h), pixel (u, v) centred at (u + 0.5, v + 0.5).
        world_from_cam: [V, 4, 4] source camera-to-world, OpenCV axes.
        target_K: [3, 3] for (width, height); target_world_from_cam: [4, 4].

    Returns:
        rgb: [height, width, 3] float64 in 0-1, 0 where nothing landed even after hole filling.
        covered: [height, width] bool, where a splat landed or a hole was filled.
    """
    img = _tensor(images)  # [V, 3, h, w]
    d = _tensor(depth)
    if d.dim() == 4:
        d = d[:, 0]
    V, _, h, w = img.shape
    if d.shape != (V, h, w):
        raise ValueError(f"depth must be [V, h, w] = {(V, h, w)}, got {tuple(d.shape)}")
    Ks, poses = _tensor(K).reshape(V, 3, 3), _tensor(world_from_cam).reshape(V, 4, 4)
    tK, tpose = _tensor(target_K).reshape(3, 3), _tensor(target_world_from_cam).reshape(4, 4)

    v, u = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                          indexing="ij")  # [h, w] pixel centres
    rays = torch.stack([(u[None] - Ks[:, 0, 2, None, None]) / Ks[:, 0, 0, None, None],
                        (v[None] - Ks[:, 1, 2, None, None]) / Ks[:, 1, 1, None, None],
                        torch.ones(V, h, w, dtype=torch.float64)], -1)  # [V, h, w, 3] camera rays at z = 1
    valid = torch.isfinite(d) & (d > 0)  # [V, h, w]
    cam_points = rays[valid] * d[valid][:, None]  # [N, 3]
    view = torch.arange(V)[:, None, None].expand(V, h, w)[valid]  # [N]
    world = torch.einsum("nij,nj->ni", poses[view, :3, :3], cam_points) + poses[view, :3, 3]  # [N, 3]
    target_from_world = torch.linalg.inv(tpose)
    p = world @ target_from_world[:3, :3].T + target_from_world[:3, 3]  # [N, 3] in the target camera
    colors = img.permute(0, 2, 3, 1)[valid]  # [N, 3]
    front = p[:, 2] > 1e-6
    p, colors = p[front], colors[front]
    z = p[:, 2]
    x = tK[0, 0] * p[:, 0] / z + tK[0, 2] - 0.5  # continuous pixel index: pixel i is centred at i + 0.5
    y = tK[1, 1] * p[:, 1] / z + tK[1, 2] - 0.5

    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    taps = []  # (pixel index, weight) of the 4 bilinear neighbours
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height) & (wgt > 0)
        taps.append((torch.where(inside, yi * width + xi, -1).long(), torch.where(inside, wgt, 0.0)))
    pix = torch.cat([t[0] for t in taps])  # [4N]
    wgt = torch.cat([t[1] for t in taps])  # [4N]
    zz, cc = z.repeat(4), colors.repeat(4, 1)  # [4N], [4N, 3]
    keep = pix >= 0
    pix, wgt, zz, cc = pix[keep], wgt[keep], zz[keep], cc[keep]

    n_pix = width * height
    inf = torch.full((n_pix,), float("inf"), dtype=torch.float64)
    strong = wgt >= min_weight
    z_strong = inf.clone().scatter_reduce_(0, pix[strong], zz[strong], reduce="amin")  # [P]
    z_any = inf.clone().scatter_reduce_(0, pix, zz, reduce="amin")  # [P]
    z_front = torch.where(torch.isfinite(z_strong), z_strong, z_any)  # [P]
    ref = z_front[pix]
    visible = (zz - ref).abs() <= depth_tolerance * ref
    weight_sum = torch.zeros(n_pix, dtype=torch.float64).index_add_(0, pix[visible], wgt[visible])
    color_sum = torch.zeros(n_pix, 3, dtype=torch.float64).index_add_(0, pix[visible],
                                                                       cc[visible] * wgt[visible, None])
    covered = (weight_sum > 1e-6).reshape(height, width).numpy()
    rgb = (color_sum / weight_sum.clamp_min(1e-12)[:, None]).reshape(height, width, 3).numpy()
    rgb[~covered] = 0.0
    return fill_holes(rgb, covered, fill_iterations)


def fill_holes(rgb: np.ndarray, covered: np.ndarray, iterations: int = FILL_ITERATIONS
               ) -> tuple[np.ndarray, np.ndarray]:
    """Uncovered pixels take the per-channel median of their covered 3x3 neighbours, `iterations` times.

    Args:
        rgb: [H, W, 3]; covered: [H, W] bool. Returns new (rgb, covered); pixels with no covered neighbour
        stay as they were (and uncovered).
    """
    rgb, covered = rgb.copy(), covered.copy()
    H, W = covered.shape
    for _ in range(max(0, int(iterations))):
        holes = ~covered
        if not holes.any() or not covered.any():
            break
        padded = np.pad(np.where(covered[..., None], rgb, np.nan), ((1, 1), (1, 1), (0, 0)), constant_values=np.nan)
        stack = np.stack([padded[dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3)])  # [9, H, W, 3]
        reached = holes & np.isfinite(stack[..., 0]).any(0)
        if not reached.any():
            break
        rgb[reached] = np.nanmedian(stack[:, reached], axis=0)
        covered = covered | reached
    return rgb, covered
