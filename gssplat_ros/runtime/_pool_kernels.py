"""numba kernel of the host voxel pooling between the two onnxruntime CPU graphs (export scatter="host").

Imported only by `gssplat_ros.runtime.host_pooling` (numba stays out of the core import path). It
computes what `network.pool_on_host` computes in torch (sums of every valid point's features per hash
slot, divided by the slot's count, zero where two voxels collided in a slot, times the point's closeness
weight), but column by column: each channel's sums live in their own table of `table_size` floats
(512 KB at 2^17 slots, in cache), channels run in parallel with no shared writes, and the features are
read and written channel-first as the graphs hold them. torch's row-wise index_add over one
[table_size, 34] table took ~29 ms of a 135 ms V=4 160x120 window here, mostly moving rows through
memory; this takes a few milliseconds. numba because neither torch nor onnxruntime has a CPU
scatter-add that is both fast and race-free on several threads (see onnx_runtime's docstring).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def point_factors(slot, columns, table_size):  # pragma: no cover - compiled
    """Per point: closeness * valid * same_voxel / count, float32 [N] (0 for invalid or collided points).

    columns: [N, 3] float32 = (valid, tag, closeness weight), as the first graph writes them.
    """
    num_points = slot.shape[0]
    count = np.zeros(table_size, np.float32)
    tag_sum = np.zeros(table_size, np.float32)
    for n in range(num_points):
        valid = columns[n, 0]
        count[slot[n]] += valid
        tag_sum[slot[n]] += columns[n, 1] * valid
    factor = np.empty(num_points, np.float32)
    for n in range(num_points):
        s = slot[n]
        inv_count = np.float32(1.0) / max(count[s], np.float32(1.0))
        same_voxel = np.float32(1.0) if abs(tag_sum[s] * inv_count - columns[n, 1]) < 0.25 else np.float32(0.0)
        factor[n] = inv_count * (columns[n, 0] * same_voxel) * columns[n, 2]
    return factor


@nb.njit(parallel=True, cache=True, nogil=True)
def pool_channels(color_feat, sem_feat, slot, valid, factor, tables, color_out, sem_out):  # pragma: no cover
    """color_out / sem_out [V, D, H, W] = factor * (voxel sum of feature * valid), channel by channel.

    color_feat, sem_feat: [V, Dc | Ds, H, W] float32 C-contiguous; slot [N] int64; valid, factor [N]
    float32 with point n = (v, h, w) in row-major order. tables: [T, table_size] float32 scratch, all
    zero, one per parallel task (task k pools channels k, k + T, ...); left all zero again.
    """
    num_views, color_dim, height, width = color_feat.shape
    channels = color_dim + sem_feat.shape[1]
    num_tasks = tables.shape[0]
    for task in nb.prange(num_tasks):
        table = tables[task]
        # prange's index may be unsigned, and unsigned - signed is float in numba: count in int64
        for c in range(np.int64(task), channels, num_tasks):
            src = color_feat if c < color_dim else sem_feat
            dst = color_out if c < color_dim else sem_out
            d = c if c < color_dim else c - color_dim
            for v in range(num_views):
                for h in range(height):
                    row = (v * height + h) * width
                    for w in range(width):
                        table[slot[row + w]] += src[v, d, h, w] * valid[row + w]
            for v in range(num_views):
                for h in range(height):
                    row = (v * height + h) * width
                    for w in range(width):
                        dst[v, d, h, w] = table[slot[row + w]] * factor[row + w]
            for v in range(num_views):  # back to zero: only the touched slots (fewer than the table)
                for h in range(height):
                    row = (v * height + h) * width
                    for w in range(width):
                        table[slot[row + w]] = 0.0
