# ruff: noqa: F722  (jaxtyping shape strings)
"""Spatial-unit aggregation: the point-level interaction where all views exchange information.

Usage:
    index = voxel_index(mu0.reshape(-1, 3), valid.reshape(-1), voxel_size_m=0.1, table_size=2**17)
    agg = SpatialAggregation(channels=16, kernel=1)
    feats = agg(feats, index)          # [V, D, H, W] -> [V, D, H, W]

Every initial centre of every pixel of every view is binned into a voxel of edge `voxel_size_m`. The
voxel coordinates are hashed into a table of static size (no torch.unique, no data-dependent shapes):

    (ix, iy, iz) = floor(p / voxel) mod 1024                 (exact in float32; wraps every 102.4 m)
    slot = (ix * 92821 + iy * 68917 + iz * 51949) mod table_size   (every product and sum < 2^31)

so the graph is int64 arithmetic that also fits int32 for TensorRT. A second tag, key mod 4093, is
pooled alongside: where a slot's mean tag differs from the point's own tag, two voxels collided in that
slot and the point reads nothing from the table (it keeps its own feature only), so collisions never mix
unrelated voxels (up to a 1/4093 chance per colliding pair). Features are mean-pooled per slot with
scatter_add (ONNX ScatterElements, reduction add), gathered back, weighted by the point's closeness to
its voxel centre (1 at the centre, 0 at a corner), concatenated with the point's own feature and reduced
by conv + GELU. Pixels without valid depth neither contribute to nor read from the table.

The colour and semantic aggregations share one index, so the network pools both feature maps with a
single scatter (`pooled_maps`). onnxruntime's CPU ScatterElements walks element by element (~60 ms of a
V=4 160x120 window), so the onnxruntime CPU runtime runs the pooling on the host between two graphs
(export/graphs.py PoolingInputsGraph / GaussiansGraph, export scatter="host"); TensorRT and CUDA keep the one
portable graph.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.model.geometry import channel_norm

WRAP = 1024.0  # voxel coordinates wrap modulo this (102.4 m at 0.1 m voxels)
PRIMES = (92821, 68917, 51949)  # < 2^19, so WRAP * sum(PRIMES) < 2^31
_HALF_DIAGONAL = math.sqrt(3.0) / 2.0


TAG_MODULUS = 4093


class VoxelIndex(NamedTuple):
    slot: Tensor  # [N] int64 hash slot per point
    tag: Tensor  # [N, 1] float secondary hash, detects slot collisions
    weight: Tensor  # [N, 1] closeness to the voxel centre in [0, 1]
    valid: Tensor  # [N, 1] 1.0 for points with valid depth
    table_size: int


def default_table_size(num_points: int) -> int:
    """The next power of two >= num_points."""
    return 1 << max(0, math.ceil(math.log2(max(1, num_points))))


def resolve_table_size(requested: int, num_points: int) -> int:
    """The hash table size voxel_index uses: `requested`, or default_table_size(num_points) for 0."""
    return requested or default_table_size(num_points)


def voxel_index(points: Float[Tensor, "N 3"], valid: Tensor, voxel_size_m: float, table_size: int = 0) -> VoxelIndex:
    """Hash slot, centre-closeness weight and validity of every point.

    Args:
        points: world positions [N, 3], metres.
        valid: [N] bool or float; False / 0 excludes a point.
        voxel_size_m: voxel edge length in metres.
        table_size: number of hash slots; 0 = default_table_size(N).
    """
    return voxel_index_maps(points.t().reshape(1, 3, -1, 1), valid.reshape(1, -1, 1), voxel_size_m, table_size)


def voxel_index_maps(
    points: Float[Tensor, "V 3 H W"], valid: Tensor, voxel_size_m: float, table_size: int = 0
) -> VoxelIndex:
    """voxel_index of channel-first point maps (the network's layout); point n = (v, h, w) in row-major
    order, so the index lines up with [V, H, W] maps flattened. valid: [V, H, W]."""
    num_views, _, height, width = points.shape
    table_size = resolve_table_size(table_size, num_views * height * width)
    q = points / voxel_size_m
    cell = torch.floor(q)
    dist = channel_norm(q - cell - 0.5, dim=1)[:, 0]  # [V, H, W]; q - cell in [0, 1)
    weight = (1.0 - dist / _HALF_DIAGONAL).clamp(min=0.0)
    wrapped = cell - torch.floor(cell / WRAP) * WRAP  # [0, WRAP), exact integers in float32
    ints = wrapped.detach().to(torch.int64)  # [V, 3, H, W]
    key = ints[:, 0] * PRIMES[0] + ints[:, 1] * PRIMES[1] + ints[:, 2] * PRIMES[2]  # [V, H, W], >= 0, < 2^31
    slot = torch.remainder(key, table_size).reshape(-1)
    tag = torch.remainder(key, TAG_MODULUS).to(points.dtype).reshape(-1, 1)
    return VoxelIndex(slot, tag, weight.reshape(-1, 1), valid.reshape(-1, 1).to(points.dtype), table_size)


class RowScatterAdd(torch.autograd.Function):
    """zeros(table_size, D).index_add(0, slot, rows) with its gradient (eager torch only)."""

    @staticmethod
    def forward(ctx, slot: Tensor, rows: Tensor, table_size: int) -> Tensor:
        ctx.save_for_backward(slot)
        # in place on a fresh zero table: copying the table first (out-of-place index_add) costs about as
        # much as the scatter itself (2^17 x 34 floats at V=4 160x120)
        return rows.new_zeros(table_size, rows.shape[1]).index_add_(0, slot, rows)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (slot,) = ctx.saved_tensors
        return None, grad.index_select(0, slot), None


def pool_rows(src: Float[Tensor, "N D+2"], index: VoxelIndex):
    """(voxel sums [N, D], factor [N, 1]) for rows [feature * valid, valid, tag * valid]: the mean of a
    point's voxel is sums * factor (factor = 1 / count, 0 for invalid or collided points).

    Eager torch pools with a row-wise index_add; an ONNX export with ScatterElements (reduction add).
    """
    num_points, width = src.shape
    dim = width - 2
    if not torch.onnx.is_in_onnx_export():
        # index_add is ~3x faster than scatter_add on the CPU (77k x 18: 3.4 vs 9.5 ms)
        table = RowScatterAdd.apply(index.slot, src, index.table_size)
    else:  # the portable graph: ONNX ScatterElements (reduction add)
        table = torch.zeros(index.table_size, width, dtype=src.dtype, device=src.device)
        table = table.scatter_add(0, index.slot[:, None].expand(num_points, width), src)
    pooled = table.index_select(0, index.slot)  # [N, D+2]
    inv_count = 1.0 / pooled[:, dim : dim + 1].clamp(min=1.0)
    same_voxel = (torch.abs(pooled[:, dim + 1 :] * inv_count - index.tag) < 0.25).to(src.dtype)
    return pooled[:, :dim], inv_count * (index.valid * same_voxel)


def voxel_mean(features: Float[Tensor, "N D"], index: VoxelIndex) -> Float[Tensor, "N D"]:
    """Mean feature of each point's voxel over the valid points (zeros for invalid or collided points)."""
    valid = index.valid
    sums, factor = pool_rows(torch.cat([features * valid, valid, index.tag * valid], dim=1), index)
    return sums * factor


def pooled_maps(
    features: list[Float[Tensor, "V D H W"]], index: VoxelIndex
) -> list[Float[Tensor, "V D H W"]]:
    """closeness * voxel mean of every feature map, all maps pooled by one scatter (they share `index`).

    The valid and tag columns are pooled once for all maps; the per-point factors are applied channel-first
    (fast broadcasts) and only the table rows are channel-last. Each map's result equals voxel_mean's
    (times the closeness weight) exactly: the scatter sums every column independently.
    """
    num_views, _, height, width = features[0].shape
    dims = [f.shape[1] for f in features]

    def maps(column: Tensor) -> Tensor:  # [N, 1] -> [V, 1, H, W] (same memory order)
        return column.reshape(num_views, 1, height, width)

    valid = maps(index.valid)
    parts = [*(f * valid for f in features), valid, maps(index.tag) * valid]  # [V, D_i | 1, H, W]
    # Concatenated channel-last in one pass: for the torch CPU runtime's channels-last activations the
    # permutes are free views (sensor window ~5% faster than a channel-first cat and a permute copy;
    # NCHW inputs, as in the onnxruntime host pooling, 22.4 -> 20.6 ms at V=4 160x120).
    src = torch.cat([p.permute(0, 2, 3, 1) for p in parts], dim=-1)  # [V, H, W, sum D + 2]
    src = src.reshape(num_views * height * width, sum(dims) + 2)
    sums, factor = pool_rows(src, index)  # [N, sum D], [N, 1]
    pooled = sums.reshape(num_views, height, width, sum(dims)).permute(0, 3, 1, 2) * maps(factor * index.weight)
    return list(pooled.split(dims, dim=1))


class SpatialAggregation(nn.Module):
    """[own feature, closeness * voxel mean] -> conv + GELU, for [V, D, H, W] feature maps."""

    def __init__(self, channels: int, kernel: int = 1):
        super().__init__()
        self.reduce = nn.Conv2d(2 * channels, channels, kernel, 1, kernel // 2)

    def forward(self, features: Float[Tensor, "V D H W"], index: VoxelIndex) -> Float[Tensor, "V D H W"]:
        return self.combine(features, pooled_maps([features], index)[0])

    def combine(self, features: Float[Tensor, "V D H W"], pooled: Float[Tensor, "V D H W"]) -> Float[Tensor, "V D H W"]:
        """The learned part: own features and their pooled voxel means (from pooled_maps) -> [V, D, H, W]."""
        return F.gelu(self.reduce(torch.cat([features, pooled], dim=1)))
