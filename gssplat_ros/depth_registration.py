"""Depth from another camera reprojected into the colour camera (what depth_image_proc's register does).

Usage:
    depth_in_color = register_depth(depth_m, K_depth, K_color, color_from_depth, (W_color, H_color))

Each valid depth pixel is unprojected with the depth camera's K, moved by the rigid `color_from_depth`
[4, 4] (the colour camera's optical frame from the depth camera's optical frame), and projected into the
colour camera. As in depth_image_proc, a depth pixel covers the colour pixels between the projections of
its two corners, so a lower-resolution depth camera leaves no holes; where several surfaces land on one
pixel the nearest wins (z-buffer). Both images are pinhole (rectify first, see camera_models).
"""

from __future__ import annotations

import numpy as np

# A depth pixel splats onto at most this many colour pixels per axis; a larger footprint means a
# colour camera with far more resolution than the depth camera, where a nearer surface edge is better
# left as a hole than smeared.
MAX_SPLAT_PX = 4
SPLAT_HALF_PX = 0.55  # half the footprint of a depth pixel, in depth pixels (0.5 would tile exactly)


def register_depth(depth_m: np.ndarray, K_depth: np.ndarray, K_color: np.ndarray, color_from_depth: np.ndarray,
                   color_size: tuple[int, int]) -> np.ndarray:
    """Depth image of one camera -> z-depth in the colour camera.

    Args:
        depth_m: [Hd, Wd] float depth in metres along the depth camera's z (0 or non-finite = invalid).
        K_depth: [3, 3] depth camera intrinsics, pixels.
        K_color: [3, 3] colour camera intrinsics, pixels.
        color_from_depth: [4, 4] rigid transform, depth optical frame -> colour optical frame (metres).
        color_size: (width, height) of the colour image.

    Returns:
        [H, W] float32 depth in metres along the colour camera's z, 0 where nothing projects.
    """
    width, height = color_size
    depth = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    v, u = np.nonzero(valid)
    z = depth[v, u]
    out = np.full(height * width, np.inf)
    if len(z) == 0:
        return np.zeros((height, width), np.float32)
    K_depth_inv = np.linalg.inv(np.asarray(K_depth, dtype=np.float64))
    rot = np.asarray(color_from_depth, dtype=np.float64)[:3, :3]
    trans = np.asarray(color_from_depth, dtype=np.float64)[:3, 3]
    K_c = np.asarray(K_color, dtype=np.float64)

    def project(du: float, dv: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel corners (u + du, v + dv) at their depth -> colour pixel coordinates and colour z: [M] each."""
        pix = np.stack([u + du, v + dv, np.ones_like(z)])  # [3, M]
        points = (K_depth_inv @ pix) * z  # [3, M] in the depth optical frame
        cam = rot @ points + trans[:, None]  # [3, M] in the colour optical frame
        proj = K_c @ cam
        with np.errstate(divide="ignore", invalid="ignore"):
            return proj[0] / proj[2], proj[1] / proj[2], cam[2]

    # Pixel centres are integers in both cameras (OpenCV convention), so corners are at +-0.5; each
    # footprint is taken at its own pixel's depth, so neighbours on a slanted surface can leave slivers
    # between them after the baseline's parallax: a footprint slightly larger than the pixel closes them.
    u0, v0, z0 = project(-SPLAT_HALF_PX, -SPLAT_HALF_PX)
    u1, v1, z1 = project(SPLAT_HALF_PX, SPLAT_HALF_PX)
    centre_u, centre_v, z_centre = project(0.0, 0.0)
    in_front = (z0 > 0) & (z1 > 0) & (z_centre > 0)
    # Colour pixels whose centres fall in the half-open footprint [min, max).
    lo_u = np.ceil(np.minimum(u0, u1))
    hi_u = np.ceil(np.maximum(u0, u1)) - 1
    lo_v = np.ceil(np.minimum(v0, v1))
    hi_v = np.ceil(np.maximum(v0, v1)) - 1
    # A footprint smaller than a colour pixel still lands on the nearest pixel.
    small_u = hi_u < lo_u
    small_v = hi_v < lo_v
    with np.errstate(invalid="ignore"):
        lo_u = np.where(small_u, np.round(centre_u), lo_u)
        hi_u = np.where(small_u, lo_u, hi_u)
        lo_v = np.where(small_v, np.round(centre_v), lo_v)
        hi_v = np.where(small_v, lo_v, hi_v)
    keep = in_front & np.isfinite(lo_u + hi_u + lo_v + hi_v)
    keep &= (hi_u >= 0) & (lo_u < width) & (hi_v >= 0) & (lo_v < height)
    lo_u, hi_u, lo_v, hi_v, zc = (a[keep] for a in (lo_u, hi_u, lo_v, hi_v, z_centre))
    hi_u = np.minimum(hi_u, lo_u + MAX_SPLAT_PX - 1)
    hi_v = np.minimum(hi_v, lo_v + MAX_SPLAT_PX - 1)
    targets, depths = [], []
    for dv in range(MAX_SPLAT_PX):
        for du in range(MAX_SPLAT_PX):
            cu, cv = lo_u + du, lo_v + dv
            sel = (cu <= hi_u) & (cv <= hi_v) & (cu >= 0) & (cu < width) & (cv >= 0) & (cv < height)
            targets.append((cv[sel] * width + cu[sel]).astype(np.int64))
            depths.append(zc[sel])
    np.minimum.at(out, np.concatenate(targets), np.concatenate(depths))  # z-buffer: the nearest surface wins
    out[~np.isfinite(out)] = 0.0
    return out.reshape(height, width).astype(np.float32)
