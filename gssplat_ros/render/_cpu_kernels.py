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


@nb.njit(parallel=True, cache=True, nogil=True)
def project_forward(means, quats, scales, K, cam_from_world, width, height, near_m, far_m, eps2d):
    """Forward-only EWA projection, the same arithmetic as `projection.project_gaussians` (float32).

    The torch version stays the differentiable reference; this one serves inference, where its ~15
    small torch ops per call cost more than the rasterisation of a 160x120 frame.
    Returns means2d [N, 2], conics [N, 3], depths [N], radii [N] int32 (0 = culled), dirs [N, 3].
    """
    n = means.shape[0]
    means2d = np.zeros((n, 2), np.float32)
    conics = np.zeros((n, 3), np.float32)
    depths = np.zeros(n, np.float32)
    radii = np.zeros(n, np.int32)
    dirs = np.zeros((n, 3), np.float32)
    R = cam_from_world[:3, :3]
    t = cam_from_world[:3, 3]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    # Camera centre in the world: -R^T t.
    c0 = -(R[0, 0] * t[0] + R[1, 0] * t[1] + R[2, 0] * t[2])
    c1 = -(R[0, 1] * t[0] + R[1, 1] * t[1] + R[2, 1] * t[2])
    c2 = -(R[0, 2] * t[0] + R[1, 2] * t[1] + R[2, 2] * t[2])
    for i in nb.prange(n):
        mx, my, mz = means[i, 0], means[i, 1], means[i, 2]
        dx, dy, dz = mx - c0, my - c1, mz - c2
        dn = max(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-12)
        dirs[i, 0], dirs[i, 1], dirs[i, 2] = dx / dn, dy / dn, dz / dn
        x = R[0, 0] * mx + R[0, 1] * my + R[0, 2] * mz + t[0]
        y = R[1, 0] * mx + R[1, 1] * my + R[1, 2] * mz + t[1]
        z = R[2, 0] * mx + R[2, 1] * my + R[2, 2] * mz + t[2]
        depths[i] = z
        if not (z > near_m and z < far_m):
            continue
        tx = z * min(max(x / z, -lim_x_neg), lim_x_pos)
        ty = z * min(max(y / z, -lim_y_neg), lim_y_pos)
        j00, j02 = fx / z, -fx * tx / (z * z)
        j11, j12 = fy / z, -fy * ty / (z * z)
        # World covariance R_q S S^T R_q^T, then camera frame, then the 2D Jacobian.
        qw, qx, qy, qz = quats[i, 0], quats[i, 1], quats[i, 2], quats[i, 3]
        qn = max(np.sqrt(qw * qw + qx * qx + qy * qy + qz * qz), 1e-12)
        qw, qx, qy, qz = qw / qn, qx / qn, qy / qn, qz / qn
        r00, r01, r02 = 1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)
        r10, r11, r12 = 2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)
        r20, r21, r22 = 2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)
        s0, s1, s2 = scales[i, 0], scales[i, 1], scales[i, 2]
        # M = R_cam R_q S (camera-frame covariance factor); cov2d = (J M)(J M)^T.
        m00 = (R[0, 0] * r00 + R[0, 1] * r10 + R[0, 2] * r20) * s0
        m01 = (R[0, 0] * r01 + R[0, 1] * r11 + R[0, 2] * r21) * s1
        m02 = (R[0, 0] * r02 + R[0, 1] * r12 + R[0, 2] * r22) * s2
        m10 = (R[1, 0] * r00 + R[1, 1] * r10 + R[1, 2] * r20) * s0
        m11 = (R[1, 0] * r01 + R[1, 1] * r11 + R[1, 2] * r21) * s1
        m12 = (R[1, 0] * r02 + R[1, 1] * r12 + R[1, 2] * r22) * s2
        m20 = (R[2, 0] * r00 + R[2, 1] * r10 + R[2, 2] * r20) * s0
        m21 = (R[2, 0] * r01 + R[2, 1] * r11 + R[2, 2] * r21) * s1
        m22 = (R[2, 0] * r02 + R[2, 1] * r12 + R[2, 2] * r22) * s2
        t00 = j00 * m00 + j02 * m20
        t01 = j00 * m01 + j02 * m21
        t02 = j00 * m02 + j02 * m22
        t10 = j11 * m10 + j12 * m20
        t11 = j11 * m11 + j12 * m21
        t12 = j11 * m12 + j12 * m22
        a = t00 * t00 + t01 * t01 + t02 * t02 + eps2d
        b = t00 * t10 + t01 * t11 + t02 * t12
        c = t10 * t10 + t11 * t11 + t12 * t12 + eps2d
        det = a * c - b * b
        if not det > 0:
            continue
        u = fx * x / z + cx
        v = fy * y / z + cy
        mid = 0.5 * (a + c)
        lam = mid + np.sqrt(max(mid * mid - det, 0.1))
        r = np.ceil(3.0 * np.sqrt(lam))
        if not (u + r > 0 and u - r < width and v + r > 0 and v - r < height and r > 0):
            continue
        means2d[i, 0], means2d[i, 1] = u, v
        conics[i, 0], conics[i, 1], conics[i, 2] = c / det, -b / det, a / det
        radii[i] = np.int32(r)
    return means2d, conics, depths, radii, dirs
