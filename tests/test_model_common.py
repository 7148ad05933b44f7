"""Shared fixtures for the model tests (no tests here): tiny seeded windows and a torch reference splatter."""

from __future__ import annotations

import math

import torch

from gssplat_ros.cameras import look_at, make_K, rigid_inverse
from gssplat_ros.model.losses import RenderedTargets
from gssplat_ros.prediction import Prediction


def camera_ring(num_views: int, radius_m: float = 0.3, height_m: float = 1.2, target=(0.0, 2.5, 1.0)) -> torch.Tensor:
    """world_from_cam [V, 4, 4]: cameras on a small arc looking at `target` (world z up)."""
    poses = []
    for i in range(num_views):
        a = 2 * math.pi * i / max(num_views, 1)
        eye = (radius_m * math.cos(a), radius_m * math.sin(a) * 0.5, height_m + 0.1 * math.sin(a))
        poses.append(look_at(eye, target))
    return torch.stack(poses)


def make_window(
    num_views: int = 2, height: int = 32, width: int = 48, seed: int = 0, targets: int = 2, num_classes: int = 5
) -> dict:
    """A window in the data-loader layout with smooth random images, depth 1.5-3.5 m and labels."""
    g = torch.Generator().manual_seed(seed)
    total = num_views + targets
    poses = camera_ring(total)
    K = make_K(0.9 * width, 0.9 * width, width / 2, height / 2)[None].repeat(total, 1, 1)
    low = torch.rand(total, 3, height // 4, width // 4, generator=g)
    images = torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
    depth = 1.5 + 2.0 * torch.nn.functional.interpolate(
        torch.rand(total, 1, height // 8, width // 8, generator=g), size=(height, width), mode="bilinear"
    )
    labels = torch.randint(0, num_classes, (total, height, width), generator=g)
    return {
        "context_images": images[:num_views],
        "context_depth": depth[:num_views],
        "context_labels": labels[:num_views],
        "context_K": K[:num_views],
        "context_world_from_cam": poses[:num_views],
        "target_images": images[num_views:],
        "target_depth": depth[num_views:, 0],
        "target_labels": labels[num_views:],
        "target_K": K[num_views:],
        "target_world_from_cam": poses[num_views:],
    }


def net_inputs(batch: dict, with_depth: bool = True) -> tuple:
    wfc = batch["context_world_from_cam"]
    depth = batch["context_depth"] if with_depth else None
    return batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc), depth


def soft_splat_ref(
    pred: Prediction, K: torch.Tensor, world_from_cam: torch.Tensor, height: int, width: int, near_m: float = 0.1
) -> RenderedTargets:
    """A differentiable stand-in for the rasteriser (tests only): isotropic splats, normalised weights.

    Not 3DGS compositing (no sorting, no transmittance), but every output depends smoothly on every
    Gaussian attribute the losses care about: means, scales, opacities, SH DC and logits.
    """
    cfw = rigid_inverse(world_from_cam)
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys], -1).reshape(-1, 2)  # [P, 2]
    outs = {"rgb": [], "logits": [], "depth": [], "alpha": []}
    for t in range(K.shape[0]):
        parts = {}
        for name, g in (("color", pred.color), ("sem", pred.semantic)):
            cam = g.means @ cfw[t, :3, :3].T + cfw[t, :3, 3]
            z = cam[:, 2]
            zs = z.clamp(min=near_m)
            uv = torch.stack([K[t, 0, 0] * cam[:, 0] / zs + K[t, 0, 2], K[t, 1, 1] * cam[:, 1] / zs + K[t, 1, 2]], -1)
            sigma = g.scales.mean(-1) * K[t, 0, 0] / zs + 0.5
            d2 = ((pix[:, None, :] - uv[None]) ** 2).sum(-1)  # [P, N]
            w = g.opacities[None] * (z[None] > near_m) * torch.exp(-0.5 * d2 / sigma[None] ** 2)
            norm = w.sum(1, keepdim=True) + 1e-6
            parts[name] = (w, norm, z)
        w, norm, z = parts["color"]
        outs["rgb"].append((w @ pred.color.colors_dc() / norm).reshape(height, width, 3))
        outs["depth"].append((w @ z[:, None] / norm).reshape(height, width))
        outs["alpha"].append(norm.clamp(max=1.0).reshape(height, width))
        w, norm, _ = parts["sem"]
        outs["logits"].append((w @ pred.semantic.features / norm).reshape(height, width, -1))
    return RenderedTargets(*(torch.stack(outs[k]) for k in ("rgb", "logits", "depth", "alpha")))
