"""The host voxel pooling between the two onnxruntime CPU graphs: the numba kernel against torch's
index_add reference (`network.pool_on_host`), including invalid points and slots where voxels collide."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gssplat_ros.model.aggregation import voxel_index_maps
from gssplat_ros.runtime.host_pooling import HostPooling


def _pooling_inputs(table_size: int, seed: int = 0, views: int = 3, height: int = 12, width: int = 16):
    """Feature maps and the first graph's index outputs (slot; valid, tag, closeness) for random points."""
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(views, 3, height, width, generator=g) * 1.5  # a 1.5 m cube, 0.1 m voxels
    valid = torch.rand(views, height, width, generator=g) > 0.2
    index = voxel_index_maps(points, valid, voxel_size_m=0.1, table_size=table_size)
    columns = torch.cat([index.valid, index.tag, index.weight], dim=1)  # [N, 3], the graph's voxel_columns
    color = torch.randn(views, 5, height, width, generator=g)
    sem = torch.randn(views, 7, height, width, generator=g)
    return [t.numpy() for t in (color, sem, index.slot, columns)]


@pytest.mark.parametrize("table_size", [4096, 64])  # 64 slots for ~3000 voxels: most slots collide
def test_numba_pooling_matches_the_torch_reference(table_size):
    pytest.importorskip("numba")
    arrays = _pooling_inputs(table_size)
    want = HostPooling(table_size, use_numba=False)(*arrays)
    pooling = HostPooling(table_size, use_numba=True)
    for _ in range(2):  # the second call reuses the scratch tables, which the first must leave zeroed
        got = pooling(*arrays)
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    valid = arrays[3][:, 0].reshape(3, 1, 12, 16)
    assert np.all(got[1][np.broadcast_to(valid == 0, got[1].shape)] == 0)  # invalid points read nothing
    assert np.any(got[1] != 0)
    if table_size == 64:  # collided slots give zeros, not a mix of two voxels
        collided = (got[0] == 0).all(axis=1) & (valid[:, 0] == 1)
        assert collided.any()


def test_pooling_rejects_slots_outside_the_table():
    pytest.importorskip("numba")
    color, sem, slot, columns = _pooling_inputs(4096)
    with pytest.raises(ValueError, match="outside the table"):
        HostPooling(1024, use_numba=True)(color, sem, slot, columns)
