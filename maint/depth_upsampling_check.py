"""Where the shipped estimated model's context-depth error is: in the half-size cost volume, or in its upsample?

For a 320x240 window the cost volume runs at 160x120 (depth_reference_width) and its depth is upsampled
bilinearly. This prints the context AbsRel of: the half-size depth against the half-size (nearest) ground
truth, and of several upsamplers (bilinear, nearest, colour-guided joint bilateral) against the full-size
ground truth (docs/training.md, "Maintenance tools").

    python maint/depth_upsampling_check.py runs/data/val 2     # data root, queries per room
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from gssplat_ros.cameras import Cameras
from gssplat_ros.data import WindowDataset
from gssplat_ros.evaluate import abs_rel
from gssplat_ros.model.checkpoint import load_model
from gssplat_ros.weights import default_checkpoint

WIDTH, HEIGHT = 320, 240


def joint_bilateral_upsample(low: torch.Tensor, image: torch.Tensor, image_low: torch.Tensor, sigma_color: float,
                             radius: int = 1, sigma_space: float = 1.0) -> torch.Tensor:
    """Each full-size pixel: the mean of the (2r+1)^2 nearest half-size depths, weighted by distance (in
    half-size pixels) and by colour likeness between the pixel and each half-size pixel.

    low [V, 1, h, w], image [V, 3, H, W], image_low [V, 3, h, w] -> [V, 1, H, W]; H = f h.
    """
    views, _, h, w = low.shape
    height, width = image.shape[-2:]
    f, k = height // h, 2 * radius + 1
    depth_nb = F.unfold(F.pad(low, (radius,) * 4, mode="replicate"), k).view(views, k * k, h, w)
    color_nb = F.unfold(F.pad(image_low, (radius,) * 4, mode="replicate"), k).view(views, 3, k * k, h, w)
    depth_nb = depth_nb.repeat_interleave(f, -2).repeat_interleave(f, -1)  # [V, k2, H, W]
    color_nb = color_nb.repeat_interleave(f, -2).repeat_interleave(f, -1)  # [V, 3, k2, H, W]
    offsets = torch.arange(-radius, radius + 1).float()
    ys = (torch.arange(height) + 0.5) / f - 0.5  # full-size pixel centres in half-size pixels
    xs = (torch.arange(width) + 0.5) / f - 0.5
    dy = torch.div(torch.arange(height), f, rounding_mode="floor")[None] + offsets[:, None] - ys[None]  # [k, H]
    dx = torch.div(torch.arange(width), f, rounding_mode="floor")[None] + offsets[:, None] - xs[None]  # [k, W]
    space = torch.exp(-(dy[:, None, :, None] ** 2 + dx[None, :, None, :] ** 2) / (2 * sigma_space**2))
    color = ((color_nb - image[:, :, None]) ** 2).sum(1)  # [V, k2, H, W]
    weights = space.reshape(k * k, height, width)[None] * torch.exp(-color / (2 * sigma_color**2))
    return ((weights * depth_nb).sum(1) / weights.sum(1).clamp_min(1e-12))[:, None]


def main(root: str, queries_per_room: int) -> None:
    torch.set_num_threads(1)
    net, _ = load_model(default_checkpoint("estimated"))
    net.cfg = net.cfg.replace(depth_refine_planes=0)  # the cascade alone, without the photometric refinement
    windows = WindowDataset(root, "scannet", split="all", views=4, targets=1, size=(WIDTH, HEIGHT),
                            max_targets=queries_per_room)
    errors: dict[str, list[float]] = {}
    for i in range(len(windows)):
        b = windows[i]
        images = b["context_images"]  # [V, 3, H, W]
        cams = Cameras(b["context_K"], b["context_world_from_cam"], WIDTH, HEIGHT)
        gt = b["context_depth"]  # [V, 1, H, W]
        with torch.inference_mode():
            levels, shipped, _ = net.estimated_depth(images, cams.K, cams.world_from_cam, cams.cam_from_world)
            low = levels[-1]  # [V, 1, H/f, W/f], f = net.cfg.depth_downscale(W, H)
            small = F.avg_pool2d(images, net.cfg.depth_downscale(WIDTH, HEIGHT))  # the cost volume's input
            variants = {
                "half-size vs half-size GT": (low, F.interpolate(gt, size=low.shape[-2:], mode="nearest")),
                "bilinear (the model's output)": (shipped[:, None], gt),
                "nearest": (F.interpolate(low, size=(HEIGHT, WIDTH), mode="nearest"), gt),
            }
            for sigma in (0.02, 0.05, 0.1, 0.2):
                variants[f"joint bilateral 3x3, sigma {sigma}"] = (joint_bilateral_upsample(low, images, small, sigma), gt)
            variants["joint bilateral 5x5, sigma 0.05"] = (joint_bilateral_upsample(low, images, small, 0.05, 2), gt)
        for name, (pred, truth) in variants.items():
            errors.setdefault(name, []).append(abs_rel(pred.numpy(), truth.numpy()))
    print(f"context AbsRel over {len(windows)} windows of {root}")
    print("| depth | AbsRel |\n|---|---|")
    for name, values in errors.items():
        print(f"| {name} | {np.mean(values):.4f} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python maint/depth_upsampling_check.py DATA_ROOT QUERIES_PER_ROOM")
    main(sys.argv[1], int(sys.argv[2]))
