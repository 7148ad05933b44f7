"""numba kernels of the photometric depth refinement on the host (onnxruntime CPU flavour, export scatter="host").

Imported only by `gssplat_ros.runtime.host_refine` (numba stays out of the core import path). They compute
what `model.depth_refine.refine_depth` computes in torch, for every pixel at once in one pass instead of
materialising [V, 3, D*h, w] warped images per neighbour: project each candidate depth into each neighbour,
sample its colour bilinearly (only candidates that land inside the neighbour's image count; a tap that
rounding puts just outside reads zero, as grid_sample's padding does), average |I_ref - I_nbr| over RGB
and over the neighbours that see it, box-filter over (2 radius + 1)^2 pixels (padding not counted), take
the cheapest candidate and refine it with a parabola through its two neighbours. numba because
onnxruntime's CPU GridSample spends its time per sample point (V=4 160x120, 17 planes, 3 neighbours:
~100 ms of GridSample for 3.9M points of 3 channels) and no
library here fuses the warp with the colour difference.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, inline="always")
def _tap(images_hwc, j, y, x, c):  # pragma: no cover - compiled
    """images_hwc[j, y, x, c], 0 outside the image (grid_sample's zeros padding)."""
    if 0 <= y < images_hwc.shape[1] and 0 <= x < images_hwc.shape[2]:
        return images_hwc[j, y, x, c]
    return np.float32(0.0)


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def colour_costs(depth, images_hwc, rays, rot, trans, intrinsics, nbrs, scales):  # pragma: no cover - compiled
    """(cost, seen), float32 [V, h, w, D] each (candidates last, contiguous): the mean colour difference over
    the neighbours that see a candidate (1 where none does) and how many see it.

    depth: [V, h, w] the cascade's depth; images_hwc: [V, h, w, 3]; rays: [V, h, w, 3] (z = 1 camera rays);
    rot / trans: [V, k, 3, 3] / [V, k, 3] reference camera -> neighbour camera; intrinsics: [V, 4] = fx, fy,
    cx, cy; nbrs: [V, k] int64; scales: [D] candidate factors exp(s).
    """
    num_views, height, width = depth.shape
    num_nbrs = nbrs.shape[1]
    planes = scales.shape[0]
    cost = np.empty((num_views, height, width, planes), np.float32)
    seen = np.empty((num_views, height, width, planes), np.float32)
    one = np.float32(1.0)
    two = np.float32(2.0)
    w_f = np.float32(width)
    h_f = np.float32(height)
    z_min = np.float32(1e-3)
    half = np.float32(0.5)
    u_max = np.float32(width - 0.5)
    v_max = np.float32(height - 0.5)
    for row in nb.prange(num_views * height):
        v = row // height
        y = row % height
        total = np.empty(planes, np.float32)
        count = np.empty(planes, np.float32)
        us = np.empty(planes, np.float32)
        vs = np.empty(planes, np.float32)
        inside = np.empty(planes, np.bool_)
        for x in range(width):
            total[:] = 0.0
            count[:] = 0.0
            base = depth[v, y, x]
            r0 = images_hwc[v, y, x, 0]
            r1 = images_hwc[v, y, x, 1]
            r2 = images_hwc[v, y, x, 2]
            q0 = rays[v, y, x, 0]
            q1 = rays[v, y, x, 1]
            q2 = rays[v, y, x, 2]
            for n in range(num_nbrs):
                j = nbrs[v, n]
                fx = intrinsics[j, 0]
                fy = intrinsics[j, 1]
                cx = intrinsics[j, 2]
                cy = intrinsics[j, 3]
                # the ray in the neighbour's frame (as torch: rot @ ray, then * depth + trans)
                ax = rot[v, n, 0, 0] * q0 + rot[v, n, 0, 1] * q1 + rot[v, n, 0, 2] * q2
                ay = rot[v, n, 1, 0] * q0 + rot[v, n, 1, 1] * q1 + rot[v, n, 1, 2] * q2
                az = rot[v, n, 2, 0] * q0 + rot[v, n, 2, 1] * q1 + rot[v, n, 2, 2] * q2
                tx = trans[v, n, 0]
                ty = trans[v, n, 1]
                tz = trans[v, n, 2]
                for d in range(planes):  # projections first: a branch-free loop the compiler vectorises
                    cand = base * scales[d]
                    z = az * cand + tz
                    zc = max(z, z_min)
                    u = fx * (ax * cand + tx) / zc + cx
                    w = fy * (ay * cand + ty) / zc + cy
                    # grid_sample's source coordinates, step by step as torch computes them (the refinement's
                    # normalised grid, then the CPU kernel's unnormalisation for align_corners=False): in flat
                    # image regions the candidates' costs differ only by rounding, and another rounding would
                    # pick another candidate there. (x / 2 and x * 0.5 are the same float.)
                    us[d] = ((two * u / w_f - one + one) * w_f - one) * half
                    vs[d] = ((two * w / h_f - one + one) * h_f - one) * half
                    inside[d] = (z > z_min) & (u > half) & (u < u_max) & (w > half) & (w < v_max)
                for d in range(planes):
                    if not inside[d]:
                        continue
                    # bilinear weights and sum in the order of torch's CPU grid_sample kernel
                    ix = us[d]
                    iy = vs[d]
                    x0 = int(np.floor(ix))
                    y0 = int(np.floor(iy))
                    fx0 = np.float32(x0)
                    fy0 = np.float32(y0)
                    nw = (fx0 + one - ix) * (fy0 + one - iy)
                    ne = (ix - fx0) * (fy0 + one - iy)
                    sw = (fx0 + one - ix) * (iy - fy0)
                    se = (ix - fx0) * (iy - fy0)
                    x1 = x0 + 1
                    y1 = y0 + 1
                    # Written out twice on purpose: one bounds test per sample, then plain loads. A shared
                    # helper testing each tap measured 41 against 29 ms for this kernel (V=4 160x120).
                    if x0 >= 0 and y0 >= 0 and x1 < width and y1 < height:  # the usual case: all four taps inside
                        diff = (abs(images_hwc[j, y0, x0, 0] * nw + images_hwc[j, y0, x1, 0] * ne
                                    + images_hwc[j, y1, x0, 0] * sw + images_hwc[j, y1, x1, 0] * se - r0)
                                + abs(images_hwc[j, y0, x0, 1] * nw + images_hwc[j, y0, x1, 1] * ne
                                      + images_hwc[j, y1, x0, 1] * sw + images_hwc[j, y1, x1, 1] * se - r1)
                                + abs(images_hwc[j, y0, x0, 2] * nw + images_hwc[j, y0, x1, 2] * ne
                                      + images_hwc[j, y1, x0, 2] * sw + images_hwc[j, y1, x1, 2] * se - r2))
                    else:  # taps outside the image read zeros (the inside test leaves only rounding's worth there)
                        diff = (abs(_tap(images_hwc, j, y0, x0, 0) * nw + _tap(images_hwc, j, y0, x1, 0) * ne
                                    + _tap(images_hwc, j, y1, x0, 0) * sw + _tap(images_hwc, j, y1, x1, 0) * se - r0)
                                + abs(_tap(images_hwc, j, y0, x0, 1) * nw + _tap(images_hwc, j, y0, x1, 1) * ne
                                      + _tap(images_hwc, j, y1, x0, 1) * sw + _tap(images_hwc, j, y1, x1, 1) * se - r1)
                                + abs(_tap(images_hwc, j, y0, x0, 2) * nw + _tap(images_hwc, j, y0, x1, 2) * ne
                                      + _tap(images_hwc, j, y1, x0, 2) * sw + _tap(images_hwc, j, y1, x1, 2) * se - r2))
                    total[d] += diff / np.float32(3.0)
                    count[d] += 1.0
            for d in range(planes):
                seen[v, y, x, d] = count[d]
                cost[v, y, x, d] = total[d] / count[d] if count[d] > 0 else np.float32(1.0)
    return cost, seen


@nb.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def pick_depth(depth, cost, seen, radius, step, log_range):  # pragma: no cover - compiled
    """The refined depth [V, h, w] float32 from the candidates' costs [V, h, w, D] (see
    model.depth_refine.refine_depth; the box filter sums in avg_pool2d's order and divides as it does)."""
    num_views, height, width, planes = cost.shape
    out = np.empty((num_views, height, width), np.float32)
    for row in nb.prange(num_views * height):
        v = row // height
        y = row % height
        y_lo = max(y - radius, 0)
        y_hi = min(y + radius, height - 1)
        filtered = np.empty(planes, np.float32)
        for x in range(width):
            x_lo = max(x - radius, 0)
            x_hi = min(x + radius, width - 1)
            area = np.float32((y_hi - y_lo + 1) * (x_hi - x_lo + 1))
            filtered[:] = 0.0
            for yy in range(y_lo, y_hi + 1):
                for xx in range(x_lo, x_hi + 1):
                    for d in range(planes):
                        filtered[d] += cost[v, yy, xx, d]
            best = 0
            for d in range(planes):
                filtered[d] = filtered[d] / area
                if filtered[d] < filtered[best]:
                    best = d
            mid = min(max(best, 1), planes - 2)
            c0 = filtered[mid - 1]
            c1 = filtered[mid]
            c2 = filtered[mid + 1]
            curvature = c0 - 2 * c1 + c2
            shift = np.float32(0.0)
            if curvature > np.float32(1e-6):
                shift = min(max(np.float32(0.5) * (c0 - c2) / curvature, np.float32(-0.5)), np.float32(0.5))
            base = depth[v, y, x]
            if seen[v, y, x, best] > 0:
                offset = np.float32(mid) * step - log_range + shift * step
                out[v, y, x] = base + (base * np.exp(offset) - base)
            else:
                out[v, y, x] = base
    return out
