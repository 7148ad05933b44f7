"""Residual blocks (GroupNorm + SiLU) and spatial multi-head self-attention, channel-first.

Usage:
    block = ResBlock(64, 64, groups=16, up=True)        # [V, 64, h, w] -> [V, 64, 2h, 2w]
    attn = SelfAttention2d(64, heads=4, kv_stride=1)    # [V, 64, h, w] -> same
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm whose group count is the largest divisor of `channels` not above `groups`."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(max(1, g), channels)


def upsample2x(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class ResBlock(nn.Module):
    """GN-SiLU-conv3x3 twice plus a skip; `up` upsamples x2 (bilinear) first, `stride` 2 downsamples."""

    def __init__(self, in_ch: int, out_ch: int, groups: int, up: bool = False, stride: int = 1):
        super().__init__()
        self.up = up
        self.norm1 = group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1)
        self.norm2 = group_norm(out_ch, groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        needs_skip = in_ch != out_ch or stride != 1
        self.skip = nn.Conv2d(in_ch, out_ch, 1, stride) if needs_skip else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if self.up:
            x = upsample2x(x)
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SelfAttention2d(nn.Module):
    """Pre-norm multi-head self-attention over the pixels of each view, with a residual.

    kv_stride > 1 average-pools the keys/values (spatial-reduction attention) to keep CPU cost low;
    kv_stride = 1 is full attention as in the paper.
    """

    def __init__(self, channels: int, heads: int, groups: int, kv_stride: int = 1):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention channels {channels} not divisible by heads {heads}")
        self.heads = heads
        self.kv_stride = kv_stride
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.kv = nn.Conv2d(channels, 2 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # starts as identity; keeps early training stable
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        num_views, channels, height, width = x.shape
        d = channels // self.heads
        h = self.norm(x)
        q = self.q(h).reshape(num_views, self.heads, d, height * width).transpose(2, 3)  # [V, nh, L, d]
        if self.kv_stride > 1:
            h = F.avg_pool2d(h, self.kv_stride)  # floor: an odd last row/column is dropped from the keys
        kv = self.kv(h)
        length = kv.shape[2] * kv.shape[3]
        k, v = kv.reshape(num_views, 2, self.heads, d, length).transpose(3, 4).unbind(1)  # [V, nh, Lk, d]
        # fused kernels in eager mode (no [L, Lk] matrix kept on GPU); MatMul + Softmax in ONNX
        out = F.scaled_dot_product_attention(q, k, v)  # [V, nh, L, d]
        out = out.transpose(2, 3).reshape(num_views, channels, height, width)
        return x + self.proj(out)


class SemanticBlock(nn.Module):
    """[residual + spatial self-attention]: one block of the semantic branch at H/4."""

    def __init__(self, in_ch: int, out_ch: int, heads: int, groups: int, kv_stride: int):
        super().__init__()
        self.res = ResBlock(in_ch, out_ch, groups)
        self.attn = SelfAttention2d(out_ch, heads, groups, kv_stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.attn(self.res(x))
