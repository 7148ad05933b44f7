"""The voxel pooling between the two onnxruntime CPU graphs (export scatter="host"), on numpy arrays.

Usage:
    pooling = HostPooling(table_size)
    color_pooled, sem_pooled = pooling(color_feat, sem_feat, voxel_slot, voxel_columns)

With numba installed (the `cpu` extra) a channel-parallel kernel pools (`_pool_kernels`) into scratch
tables kept between calls (allocating 17 MB of fresh tables per window cost page faults: the torch
pooling took ~10 ms alone but ~29 ms between the two graphs); without numba, torch's row-wise index_add
(`network.pool_on_host`, the reference). Both give the same result up to float rounding of the sums
(a test compares them).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from gssplat_ros.model.network import pool_on_host

HAVE_NUMBA = importlib.util.find_spec("numba") is not None


class HostPooling:
    """Closeness * voxel mean of the colour and semantic feature maps over a hash table of `table_size`."""

    def __init__(self, table_size: int, use_numba: bool = HAVE_NUMBA):
        self.table_size = int(table_size)
        self.use_numba = use_numba
        self._tables = None  # [T, table_size] float32 zeros, numba scratch (one per parallel task)

    def __call__(
        self,
        color_feat: np.ndarray,  # [V, Dc, H, W] float32
        sem_feat: np.ndarray,  # [V, Ds, H, W] float32
        slot: np.ndarray,  # [N] int64, N = V * H * W
        columns: np.ndarray,  # [N, 3] float32: valid, tag, closeness weight
    ) -> tuple[np.ndarray, np.ndarray]:  # [V, Dc, H, W], [V, Ds, H, W] float32
        if not self.use_numba:
            arrays = (color_feat, sem_feat, slot, columns)
            pooled = pool_on_host(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays), self.table_size)
            return pooled[0].numpy(), pooled[1].numpy()
        import numba

        # lazy: numba (the `cpu` extra) is optional; without it the torch reference runs
        from gssplat_ros.runtime._pool_kernels import point_factors, pool_channels

        color_feat = np.ascontiguousarray(color_feat, np.float32)
        sem_feat = np.ascontiguousarray(sem_feat, np.float32)
        slot = np.ascontiguousarray(slot, np.int64)
        columns = np.ascontiguousarray(columns, np.float32)
        if slot.size and (slot.min() < 0 or slot.max() >= self.table_size):
            raise ValueError(f"voxel slots outside the table of {self.table_size}")
        tasks = max(1, min(numba.get_num_threads(), color_feat.shape[1] + sem_feat.shape[1]))
        if self._tables is None or self._tables.shape[0] != tasks:
            self._tables = np.zeros((tasks, self.table_size), np.float32)
        factor = point_factors(slot, columns, self.table_size)  # [N]
        valid = np.ascontiguousarray(columns[:, 0])
        color_out = np.empty_like(color_feat)
        sem_out = np.empty_like(sem_feat)
        pool_channels(color_feat, sem_feat, slot, valid, factor, self._tables, color_out, sem_out)
        return color_out, sem_out
