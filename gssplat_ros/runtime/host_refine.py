"""The photometric depth refinement between the onnxruntime CPU depth graph and the rest (export scatter="host").

Usage:
    refine = HostRefinement(planes=17, rel_range=0.4, radius=1)
    refined = refine(depth, images, K, world_from_cam, cam_from_world, nbrs)   # [V, 1, h, w] float32

An estimated-depth model with `depth_refine_planes` runs, in the onnxruntime CPU flavour, as three graphs:
the cascade (depth graph), then the rest up to the voxel pooling, then the heads. The refinement between the
first two runs here: with numba, as one fused kernel (`_refine_kernels`); without it, torch's
`model.depth_refine.refine_depth`, the reference. Inside onnxruntime the refinement's 3 GridSamples over
17 depth planes and the arithmetic around them took ~140 ms of a ~700 ms window at V=4 160x120 (2 threads);
the kernel takes a few milliseconds. Both pick the same candidate except where two candidates' costs tie to
float rounding (a test compares them).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from gssplat_ros.model.depth_refine import neighbour_transforms, refine_depth
from gssplat_ros.model.geometry import pixel_rays
from gssplat_ros.runtime.host_pooling import HAVE_NUMBA


class HostRefinement:
    """`model.depth_refine.refine_depth` on numpy arrays (the forward value; no gradient)."""

    def __init__(self, planes: int, rel_range: float, radius: int, use_numba: bool = HAVE_NUMBA):
        if planes < 3 or not 0 < rel_range < 1 or radius < 0:
            raise ValueError(f"host refinement needs planes >= 3, 0 < rel_range < 1 and radius >= 0, got "
                             f"{planes}, {rel_range}, {radius}")  # fmt: skip
        self.planes, self.rel_range, self.radius = int(planes), float(rel_range), int(radius)
        self.use_numba = use_numba

    def __call__(
        self,
        depth: np.ndarray,  # [V, 1, h, w] float32, the cascade's finest depth
        images: np.ndarray,  # [V, 3, h, w] float32, the images at the depth's size
        K: np.ndarray,  # [V, 3, 3] intrinsics for that size
        world_from_cam: np.ndarray,  # [V, 4, 4]
        cam_from_world: np.ndarray,  # [V, 4, 4]
        nbrs: np.ndarray,  # [V, k] int64, each view's neighbours
    ) -> np.ndarray:  # [V, 1, h, w] float32
        tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in (depth, images, K, world_from_cam, cam_from_world)]
        nbrs_t = torch.from_numpy(np.ascontiguousarray(nbrs, np.int64))
        if not self.use_numba:
            with torch.no_grad():
                return refine_depth(*tensors, nbrs_t, self.planes, self.rel_range, self.radius).numpy()
        # lazy: numba (the `cpu` extra) is optional; without it the torch reference runs
        from gssplat_ros.runtime._refine_kernels import colour_costs, pick_depth

        depth_t, images_t, K_t, wc, cw = tensors
        num_views, _, height, width = images_t.shape
        if nbrs_t.numel() and (nbrs_t.min() < 0 or nbrs_t.max() >= num_views):
            raise ValueError(f"neighbour indices outside the {num_views} views")
        with torch.no_grad():  # the per-view geometry in torch, exactly as refine_depth computes it
            rays = pixel_rays(K_t, height, width)  # [V, h, w, 3]
            pairs = [neighbour_transforms(wc, cw, nbrs_t[:, n]) for n in range(nbrs_t.shape[1])]
            rot = torch.stack([r for r, _ in pairs], 1) if pairs else torch.zeros(num_views, 0, 3, 3)  # [V, k, 3, 3]
            trans = torch.stack([t[:, :, 0] for _, t in pairs], 1) if pairs else torch.zeros(num_views, 0, 3)  # [V, k, 3]
            log_range = math.log1p(self.rel_range)
            scales = torch.exp(torch.linspace(-log_range, log_range, self.planes, dtype=torch.float32))  # [D]
            intrinsics = torch.stack([K_t[:, 0, 0], K_t[:, 1, 1], K_t[:, 0, 2], K_t[:, 1, 2]], dim=1)  # [V, 4]
        step = 2.0 * log_range / (self.planes - 1)
        base = np.ascontiguousarray(depth_t[:, 0].numpy(), np.float32)  # [V, h, w]
        cost, seen = colour_costs(
            base, np.ascontiguousarray(images_t.permute(0, 2, 3, 1).numpy()), rays.contiguous().numpy(),
            rot.contiguous().numpy(), trans.contiguous().numpy(), intrinsics.contiguous().numpy(),
            nbrs_t.numpy(), scales.numpy(),
        )  # fmt: skip
        refined = pick_depth(base, cost, seen, self.radius, np.float32(step), np.float32(log_range))
        return refined[:, None]
