"""Multi-scale semantics maths, shared by training and inference (gssplat_ros/runtime/semantic_scales.py
explains the method and picks the scales): a window at a smaller scale, and the fusion of class logits
from several scales.

Usage:
    small = downscale_inputs(inputs, 2)                                   # the window at half size
    logits = fuse_semantic_logits([full["sem_logits"], half["sem_logits"]], H, W)   # [V, H, W, C]
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gssplat_ros.model.depth import scale_intrinsics
from gssplat_ros.model.geometry import masked_avg_pool
from gssplat_ros.prediction import EncoderInputs


def check_scaled_size(scales: Sequence[float], width: int, height: int) -> None:
    """ValueError unless every scale gives a size the encoder takes (divisible by 4)."""
    for s in scales:
        factor = round(1.0 / s)
        if width % (4 * factor) or height % (4 * factor):
            raise ValueError(f"semantic_scales: {s:g} of {width}x{height} is not divisible by 4 "
                             f"(the size must be divisible by {4 * factor})")  # fmt: skip


def downscale_inputs(inputs: EncoderInputs, factor: int) -> EncoderInputs:
    """The window at 1/factor of its size: images area-averaged, depth over valid pixels, K scaled."""
    K = scale_intrinsics(inputs.K, 1.0 / factor)  # [V, 3, 3]
    depth = None if inputs.depth is None else masked_avg_pool(inputs.depth, factor)  # [V, 1, H/f, W/f]
    return EncoderInputs(F.avg_pool2d(inputs.images, factor), K, inputs.world_from_cam, inputs.cam_from_world, depth)


def fuse_semantic_logits(logits: Sequence[Tensor], height: int, width: int) -> Tensor:
    """Mean of per-pixel class logits from several scales, each [V, h, w, C], upsampled bilinearly to
    height x width first: [V, H, W, C]. Differentiable, so training can fit exactly what inference fuses."""
    full = []
    for x in logits:
        if x.shape[1:3] != (height, width):
            x = F.interpolate(x.permute(0, 3, 1, 2), size=(height, width), mode="bilinear",
                              align_corners=False).permute(0, 2, 3, 1)  # fmt: skip
        full.append(x)
    return torch.stack(full).mean(dim=0).contiguous()
