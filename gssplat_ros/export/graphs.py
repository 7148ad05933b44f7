"""Graph wrappers that the ONNX exporter traces around GSsplatNet: one graph, or the split graphs that
onnxruntime runs on the CPU with the voxel pooling on the host.

Usage:
    onnx_module = ExportWrapper(net)                                 # positional INPUT_NAMES -> tuple
    first, second = PoolingInputsGraph(net), GaussiansGraph(net)     # the split export (onnxruntime CPU):
    depth, color_feat, sem_feat, slot, columns = first(images, K, world_from_cam, cam_from_world, depth)
    pooled = pool_on_host(color_feat, sem_feat, slot, columns, first.table_size(V, H, W))
    outputs = second(images, K, world_from_cam, depth, color_feat, pooled[0], sem_feat, pooled[1])
    # a refining estimated model (net.refines_on_host(W, H)) on the CPU: the cascade in a graph of its own,
    # the refinement on the host (runtime/host_refine.py), then the pair from the refined depth
    cascade_depth, small, K_small, nbrs = DepthGraph(net)(images, K, world_from_cam, cam_from_world)
    first = PoolingInputsGraph(net, refined_depth_input=True)    # last input: the refined depth

Shapes as in gssplat_ros/model/network.py.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from gssplat_ros.model.aggregation import resolve_table_size
from gssplat_ros.model.depth import nearest_views
from gssplat_ros.model.network import GSsplatNet, contract_outputs
from gssplat_ros.prediction import GRAPH_DEPTH_OUTPUT, INPUT_NAMES, OUTPUT_NAMES


class ExportWrapper(nn.Module):
    """Positional INPUT_NAMES in (depth only in sensor mode), a tuple in OUTPUT_NAMES order out.

    ONNX needs unique value names, but the contract names both an input and an output `depth`; the
    graph's output is therefore called GRAPH_DEPTH_OUTPUT (see `graph_output_names`), and runtimes map
    outputs by position. In sensor mode the network itself never reads `cam_from_world`; with
    `keep_all_inputs` it is tied to the depth output by a zero-weighted term so that the exported graph
    keeps every contract input (one uniform feed for both depth modes).
    """

    input_names = INPUT_NAMES
    output_names = OUTPUT_NAMES

    def __init__(self, net: GSsplatNet, keep_all_inputs: bool = True):
        super().__init__()
        self.net = net
        self.keep_all_inputs = keep_all_inputs

    def forward(
        self,
        images: Tensor,
        K: Tensor,
        world_from_cam: Tensor,
        cam_from_world: Tensor,
        depth: Optional[Tensor] = None,
    ) -> tuple[Tensor, ...]:
        out = self.net(images, K, world_from_cam, cam_from_world, depth)
        if self.keep_all_inputs:
            out["depth"] = out["depth"] + 0.0 * cam_from_world[:1, 3:, 3:].reshape(1, 1, 1)
        return tuple(out[name] for name in OUTPUT_NAMES)

    def graph_input_names(self) -> tuple[str, ...]:
        """The inputs the exported graph takes for this model's depth mode."""
        return INPUT_NAMES if self.net.cfg.depth_mode == "sensor" else INPUT_NAMES[:4]

    @staticmethod
    def graph_output_names() -> tuple[str, ...]:
        """OUTPUT_NAMES with `depth` renamed to GRAPH_DEPTH_OUTPUT (unique ONNX value names)."""
        return tuple(GRAPH_DEPTH_OUTPUT if n == "depth" else n for n in OUTPUT_NAMES)


# split export
# onnxruntime's CPU kernels have no scatter-add that is both fast and correct on several threads
# (ScatterElements walks element by element; a reducing ScatterND races), so the onnxruntime CPU runtime
# runs the network as two graphs with the voxel pooling between them on the host (torch index_add):
#   PoolingInputsGraph:  contract inputs -> depth, both branches' features, the voxel index
#   GaussiansGraph:      ... + the pooled features -> the contract outputs
# Together they compute exactly GSsplatNet.forward's contract outputs.
# A model that refines its depth on the host (GSsplatNet.refines_on_host) runs one graph more before them:
#   DepthGraph:          (images, K, world_from_cam, cam_from_world) -> DEPTH_GRAPH_OUTPUTS
#   (the host refines)   -> REFINED_DEPTH_INPUT, PoolingInputsGraph's last input in place of `depth`
# (the graph value names are part of the contract, in gssplat_ros/prediction.py)


class PoolingInputsGraph(nn.Module):
    """First graph of the split export: (images, K, world_from_cam, cam_from_world[, depth]) ->
    depth_full [V, H, W], color_feat / sem_feat [V, Dd, H, W] (before aggregation), voxel_slot [N]
    int64 and voxel_columns [N, 3] = (valid, tag, closeness weight) for N = V H W points.

    With `refined_depth_input` (a model that refines on the host, GSsplatNet.refines_on_host) the last
    input is REFINED_DEPTH_INPUT, the refined finest cascade level [V, 1, h, w], instead of the cascade.
    """

    def __init__(self, net: GSsplatNet, refined_depth_input: bool = False):
        super().__init__()
        if not net.cfg.aggregate:
            raise ValueError("the split export is for models with spatial aggregation (cfg.aggregate)")
        self.net = net
        self.refined_depth_input = refined_depth_input

    def table_size(self, views: int, height: int, width: int) -> int:
        """Hash slots of the voxel table for a window of this shape (what pool_on_host needs)."""
        return resolve_table_size(self.net.cfg.hash_table_size, views * height * width)

    def forward(self, images, K, world_from_cam, cam_from_world, depth=None) -> tuple[Tensor, ...]:
        if self.refined_depth_input:
            trunk = self.net._trunk(images, K, world_from_cam, cam_from_world, None, refined_finest=depth)
        else:
            trunk = self.net._trunk(images, K, world_from_cam, cam_from_world, depth)
        index = trunk.index
        columns = torch.cat([index.valid, index.tag, index.weight], dim=1)  # [N, 3]
        # every contract input stays a graph input, as in ExportWrapper (sensor mode never reads cam_from_world)
        depth_full = trunk.depth_full + 0.0 * cam_from_world[:1, 3:, 3:].reshape(1, 1, 1)
        return depth_full, self.net.color_decoder(trunk.color), trunk.sem_feat, index.slot, columns


class DepthGraph(nn.Module):
    """The graph before PoolingInputsGraph for a model that refines its depth on the host
    (GSsplatNet.refines_on_host): (images, K, world_from_cam, cam_from_world) -> DEPTH_GRAPH_OUTPUTS =
    the unrefined finest cascade level [V, 1, h, w], the images [V, 3, h, w] and K [V, 3, 3] at its size and
    each view's neighbours [V, k] int64, which is what the refinement reads (runtime/host_refine.py)."""

    def __init__(self, net: GSsplatNet):
        super().__init__()
        self.net = net

    def forward(self, images, K, world_from_cam, cam_from_world) -> tuple[Tensor, ...]:
        net = self.net
        levels, small, K_small = net.cascade(images, K, world_from_cam, cam_from_world)
        nbrs = nearest_views(world_from_cam, min(net.cfg.depth_neighbors, images.shape[0] - 1))
        return levels[-1], small + 0.0, K_small + 0.0, nbrs  # + 0.0: outputs distinct from the inputs at f = 1


class GaussiansGraph(nn.Module):
    """Second graph of the split export: GAUSSIANS_GRAPH_INPUTS -> the contract outputs (OUTPUT_NAMES order)."""

    def __init__(self, net: GSsplatNet):
        super().__init__()
        self.net = net

    def forward(self, images, K, world_from_cam, depth_full, color_feat, color_pooled, sem_feat, sem_pooled):
        net = self.net
        color_feat = net.color_aggregate.combine(color_feat, color_pooled)
        sem_feat = net.semantic_aggregate.combine(sem_feat, sem_pooled)
        color, sem, sh = net._gaussians(images, K, world_from_cam, depth_full, color_feat, sem_feat)
        out = contract_outputs(color, sem, sh, depth_full)
        return tuple(out[name] for name in OUTPUT_NAMES)
