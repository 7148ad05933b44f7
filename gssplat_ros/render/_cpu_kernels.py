"""numba kernels of the CPU rasteriser: tile binning, front-to-back blending, and its backward.

Imported only by `gssplat_ros.render.cpu` (numba stays out of the core import path). All kernels
are compiled once and cached on disk (`cache=True`).

Blending per pixel (sampled at its centre, +0.5), identical to gsplat's classic rasteriser:
    sigma = 0.5 (a dx^2 + c dy^2) + b dx dy,   d = mean2d - pixel centre
    skip if sigma < 0;  alpha = min(0.99, opacity exp(-sigma));  skip if alpha < 1/255
    stop before a fragment that would take the transmittance below 1e-4
    out += alpha T value;  T *= (1 - alpha)
Race-free backward: every (tile, Gaussian) intersection owns its own gradient slot; one tile is
processed by one thread, then slots are summed per Gaussian.
"""

from __future__ import annotations

import numba as nb
import numpy as np

ALPHA_MAX = 0.99
ALPHA_MIN = 1.0 / 255.0
T_MIN = 1e-4


@nb.njit(cache=True, nogil=True)
def bin_gaussians(means2d, radii, depths, width, height, tile):
    """Intersections sorted by tile, then by depth within a tile.

    A Gaussian covers the tiles [floor((u - r) / tile), ceil((u + r) / tile)) in x (and so in y), r its
    3-sigma radius, as gsplat's `isect_tiles` does; pixels of other tiles never see it.

    Returns:
        tile_start: [num_tiles + 1] int64, intersections of tile t are isect_ids[tile_start[t]:tile_start[t+1]]
        isect_gauss: [M] int64 Gaussian index of each intersection.
    """
    n = means2d.shape[0]
    tiles_x = (width + tile - 1) // tile
    tiles_y = (height + tile - 1) // tile
    num_tiles = tiles_x * tiles_y
    x0 = np.empty(n, np.int64)
    x1 = np.empty(n, np.int64)
    y0 = np.empty(n, np.int64)
    y1 = np.empty(n, np.int64)
    counts = np.zeros(num_tiles + 1, np.int64)
    for i in range(n):
        r = radii[i]
        if r <= 0:
            x0[i] = x1[i] = y0[i] = y1[i] = 0
            continue
        u, v = means2d[i, 0], means2d[i, 1]
        x0[i] = min(max(int(np.floor((u - r) / tile)), 0), tiles_x)
        x1[i] = min(max(int(np.ceil((u + r) / tile)), 0), tiles_x)
        y0[i] = min(max(int(np.floor((v - r) / tile)), 0), tiles_y)
        y1[i] = min(max(int(np.ceil((v + r) / tile)), 0), tiles_y)
        for ty in range(y0[i], y1[i]):
            for tx in range(x0[i], x1[i]):
                counts[ty * tiles_x + tx + 1] += 1
    tile_start = np.cumsum(counts)
    fill = tile_start[:-1].copy()
    isect_gauss = np.empty(tile_start[-1], np.int64)
    order = np.argsort(depths)  # front to back; a counting sort by tile keeps this order
    for k in range(n):
        i = order[k]
        if radii[i] <= 0:
            continue
        for ty in range(y0[i], y1[i]):
            for tx in range(x0[i], x1[i]):
                t = ty * tiles_x + tx
                isect_gauss[fill[t]] = i
                fill[t] += 1
    return tile_start, isect_gauss


@nb.njit(parallel=True, cache=True, fastmath=False, nogil=True)  # nogil: ROS callbacks run during a render
def rasterize_forward(means2d, conics, opacities, values, tile_start, isect_gauss, width, height, tile):
    """Blend `values` [N, D] front to back.

    Returns:
        out: [H, W, D] blended values; t_final: [H, W] transmittance after the last fragment;
        n_used: [H, W] int64, how many of the tile's intersections the pixel walked (for backward).
    """
    d = values.shape[1]
    tiles_x = (width + tile - 1) // tile
    num_tiles = tile_start.shape[0] - 1
    out = np.zeros((height, width, d), np.float32)
    t_final = np.ones((height, width), np.float32)
    n_used = np.zeros((height, width), np.int64)
    for t in nb.prange(num_tiles):
        start, end = tile_start[t], tile_start[t + 1]
        if start == end:
            continue
        px0 = (t % tiles_x) * tile
        py0 = (t // tiles_x) * tile
        # Gather the tile's Gaussians into contiguous float32 locals (cache-friendly inner loop).
        cnt = end - start
        lmx = np.empty(cnt, np.float32)
        lmy = np.empty(cnt, np.float32)
        la = np.empty(cnt, np.float32)
        lb = np.empty(cnt, np.float32)
        lc = np.empty(cnt, np.float32)
        lo = np.empty(cnt, np.float32)
        lcut = np.empty(cnt, np.float32)
        lv = np.empty((cnt, d), np.float32)
        for j in range(cnt):
            g = isect_gauss[start + j]
            lmx[j], lmy[j] = means2d[g, 0], means2d[g, 1]
            la[j], lb[j], lc[j] = conics[g, 0], conics[g, 1], conics[g, 2]
            lo[j] = opacities[g]
            # alpha < 1/255 exactly when sigma > ln(255 opacity): a cheap pre-test that avoids exp();
            # the margin leaves borderline fragments to the exact test below.
            lcut[j] = np.log(max(opacities[g] * 255.0, 1e-30)) + 1e-3
            lv[j, :] = values[g, :]
        acc = np.zeros(d, np.float32)
        for py in range(py0, min(py0 + tile, height)):
            cy = np.float32(py + 0.5)
            for px in range(px0, min(px0 + tile, width)):
                cx = np.float32(px + 0.5)
                T = np.float32(1.0)
                acc[:] = 0.0
                used = cnt
                for j in range(cnt):
                    dx = lmx[j] - cx
                    dy = lmy[j] - cy
                    sigma = np.float32(0.5) * (la[j] * dx * dx + lc[j] * dy * dy) + lb[j] * dx * dy
                    if sigma < 0.0 or sigma > lcut[j]:
                        continue
                    alpha = min(np.float32(ALPHA_MAX), lo[j] * np.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = T * (np.float32(1.0) - alpha)
                    if next_t < T_MIN:
                        used = j
                        break
                    w = alpha * T
                    for c in range(d):
                        acc[c] += w * lv[j, c]
                    T = next_t
                for c in range(d):
                    out[py, px, c] = acc[c]
                t_final[py, px] = T
                n_used[py, px] = used
    return out, t_final, n_used


@nb.njit(parallel=True, cache=True, fastmath=False, nogil=True)  # nogil: ROS callbacks run during a render
def rasterize_backward(
    means2d, conics, opacities, values, background, tile_start, isect_gauss, t_final, n_used,
    grad_out, grad_alpha, width, height, tile,
):
    cut = np.empty(opacities.shape[0], np.float32)  # the forward's exp-free pre-test, per Gaussian
    for i in range(opacities.shape[0]):
        cut[i] = np.log(max(opacities[i] * 255.0, 1e-30)) + 1e-3
    """Gradients of sum(grad_out * out) + sum(grad_alpha * (1 - t_final)) w.r.t. the inputs.

    `background` [D] is blended as t_final * background (zeros when there is none).
    Returns per-Gaussian gradients: means2d [N, 2], conics [N, 3], opacities [N], values [N, D].
    """
    n, d = values.shape
    tiles_x = (width + tile - 1) // tile
    num_tiles = tile_start.shape[0] - 1
    m = isect_gauss.shape[0]
    # One slot per intersection: [dmu_x, dmu_y, da, db, dc, dopacity] + D value grads.
    slot_geo = np.zeros((m, 6), np.float32)
    slot_val = np.zeros((m, d), np.float32)
    for t in nb.prange(num_tiles):
        start, end = tile_start[t], tile_start[t + 1]
        if start == end:
            continue
        px0 = (t % tiles_x) * tile
        py0 = (t // tiles_x) * tile
        acc_after = np.zeros(d, np.float32)  # sum over later fragments of w_j * value_j
        for py in range(py0, min(py0 + tile, height)):
            for px in range(px0, min(px0 + tile, width)):
                cx, cy = np.float32(px + 0.5), np.float32(py + 0.5)
                T = t_final[py, px]
                g_alpha_out = grad_alpha[py, px]
                acc_after[:] = 0.0
                # Walk the blended fragments back to front, recovering T before each one.
                for k in range(start + n_used[py, px] - 1, start - 1, -1):
                    g = isect_gauss[k]
                    dx = means2d[g, 0] - cx
                    dy = means2d[g, 1] - cy
                    a, b, c = conics[g, 0], conics[g, 1], conics[g, 2]
                    sigma = np.float32(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy
                    if sigma < 0.0 or sigma > cut[g]:
                        continue
                    gauss = np.exp(-sigma)
                    raw = opacities[g] * gauss
                    alpha = min(ALPHA_MAX, raw)
                    if alpha < ALPHA_MIN:
                        continue
                    T_before = T / (1.0 - alpha)
                    w = alpha * T_before
                    # d out / d alpha = T_before * value - (acc_after + t_final * bg) / (1 - alpha)
                    d_alpha = 0.0
                    for ch in range(d):
                        go = grad_out[py, px, ch]
                        slot_val[k, ch] += w * go
                        d_alpha += go * (T_before * values[g, ch]
                                         - (acc_after[ch] + t_final[py, px] * background[ch]) / (1.0 - alpha))
                    # alpha_out = 1 - prod(1 - alpha_j): d/d alpha_i = t_final / (1 - alpha_i)
                    d_alpha += g_alpha_out * t_final[py, px] / (1.0 - alpha)
                    for ch in range(d):
                        acc_after[ch] += w * values[g, ch]
                    T = T_before
                    if raw >= ALPHA_MAX:  # clamped: no gradient to opacity or geometry
                        continue
                    slot_geo[k, 5] += d_alpha * gauss
                    d_sigma = -d_alpha * raw  # d alpha / d sigma = -opacity * gauss
                    slot_geo[k, 0] += d_sigma * (a * dx + b * dy)
                    slot_geo[k, 1] += d_sigma * (b * dx + c * dy)
                    slot_geo[k, 2] += d_sigma * 0.5 * dx * dx
                    slot_geo[k, 3] += d_sigma * dx * dy
                    slot_geo[k, 4] += d_sigma * 0.5 * dy * dy
    g_means2d = np.zeros((n, 2), np.float32)
    g_conics = np.zeros((n, 3), np.float32)
    g_opac = np.zeros(n, np.float32)
    g_values = np.zeros((n, d), np.float32)
    for k in range(m):  # serial reduction: Gaussians repeat across tiles
        g = isect_gauss[k]
        g_means2d[g, 0] += slot_geo[k, 0]
        g_means2d[g, 1] += slot_geo[k, 1]
        g_conics[g, 0] += slot_geo[k, 2]
        g_conics[g, 1] += slot_geo[k, 3]
        g_conics[g, 2] += slot_geo[k, 4]
        g_opac[g] += slot_geo[k, 5]
        for ch in range(d):
            g_values[g, ch] += slot_val[k, ch]
    return g_means2d, g_conics, g_opac, g_values
