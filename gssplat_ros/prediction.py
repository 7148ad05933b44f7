"""The contract between the encoder (any runtime) and everything downstream.

Usage:
    inputs = EncoderInputs.from_cameras(images, cams, depth)     # host side, inverse poses included
    outputs = runtime(inputs)                                    # dict name -> tensor, OUTPUT_NAMES
    pred = Prediction.from_outputs(outputs)                      # two Gaussians sets + depth
    cloud = pred.for_cloud()                                     # colour geometry + semantic logits

The exported graph (ONNX / TensorRT) has exactly INPUT_NAMES in and OUTPUT_NAMES out, per pixel of
every view; the rasteriser stays outside the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import Gaussians

# Graph inputs. `depth` only in sensor-depth mode.
INPUT_NAMES = ("images", "K", "world_from_cam", "cam_from_world", "depth")

# Graph outputs, all per pixel: [V, H, W, ...].
OUTPUT_NAMES = (
    "color_means",  # [V, H, W, 3] metres, world
    "color_quats",  # [V, H, W, 4] wxyz, unit
    "color_scales",  # [V, H, W, 3] metres
    "color_opacities",  # [V, H, W]
    "color_sh",  # [V, H, W, K, 3]
    "sem_means",  # [V, H, W, 3]
    "sem_quats",  # [V, H, W, 4]
    "sem_scales",  # [V, H, W, 3]
    "sem_opacities",  # [V, H, W]
    "sem_logits",  # [V, H, W, C]
    "depth",  # [V, H, W] metres: the depth the centres were unprojected from (sensor or estimated)
)

# ONNX needs unique value names, so the graph's `depth` output is called this; runtimes map outputs by position.
GRAPH_DEPTH_OUTPUT = "depth_out"

# Names inside the split graphs that gssplat_ros.export builds and the onnxruntime CPU runtime runs
# (gssplat_ros/export/graphs.py describes the graphs):
POOLING_INPUT_OUTPUTS = ("depth_full", "color_feat", "sem_feat", "voxel_slot", "voxel_columns")
DEPTH_GRAPH_OUTPUTS = ("cascade_depth", "depth_images", "depth_K", "depth_nbrs")
REFINED_DEPTH_INPUT = "refined_depth"
GAUSSIANS_GRAPH_INPUTS = ("images", "K", "world_from_cam", "depth_full", "color_feat", "color_pooled",
                          "sem_feat", "sem_pooled")  # fmt: skip


@dataclass
class EncoderInputs:
    images: Tensor  # [V, 3, H, W] RGB in [0, 1]
    K: Tensor  # [V, 3, 3] pixels, for the H x W images
    world_from_cam: Tensor  # [V, 4, 4]
    cam_from_world: Tensor  # [V, 4, 4] (inverted on the host; no inverse op in the graph)
    depth: Optional[Tensor] = None  # [V, 1, H, W] metres, 0 where invalid; None = estimate

    @staticmethod
    def from_cameras(images: Tensor, cameras: Cameras, depth: Optional[Tensor] = None) -> EncoderInputs:
        return EncoderInputs(
            images=images,
            K=cameras.K,
            world_from_cam=cameras.world_from_cam,
            cam_from_world=cameras.cam_from_world,
            depth=depth,
        )

    def to(self, device=None, dtype=None) -> EncoderInputs:
        mv = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
        tensors = (self.images, self.K, self.world_from_cam, self.cam_from_world, self.depth)
        return EncoderInputs(*(mv(t) for t in tensors))

    def as_dict(self) -> dict[str, Tensor]:
        out = {n: getattr(self, n) for n in INPUT_NAMES}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class Prediction:
    """Two Gaussian sets predicted for one window, plus the depth they were built from."""

    color: Gaussians  # SH colour, no features
    semantic: Gaussians  # features = class logits [N, C]
    depth: Tensor  # [V, H, W] metres
    colour_gaussians: str = "learned"  # the model's ModelConfig.colour_gaussians: render with colour_settings

    @staticmethod
    def from_outputs(outputs: dict[str, Tensor], colour_gaussians: str = "learned") -> Prediction:
        def flat(name: str, tail: int) -> Tensor:
            t = outputs[name]
            return t.reshape(-1, *t.shape[tail:]) if tail else t.reshape(-1)

        num_views, height, width = outputs["color_means"].shape[:3]
        sem_logits = outputs["sem_logits"]
        semantic_sh = torch.zeros(num_views * height * width, 1, 3, dtype=sem_logits.dtype, device=sem_logits.device)
        color = Gaussians(
            means=flat("color_means", 3),
            quats=flat("color_quats", 3),
            scales=flat("color_scales", 3),
            opacities=flat("color_opacities", 0),
            sh=flat("color_sh", 3),
        )
        semantic = Gaussians(
            means=flat("sem_means", 3),
            quats=flat("sem_quats", 3),
            scales=flat("sem_scales", 3),
            opacities=flat("sem_opacities", 0),
            sh=semantic_sh,
            features=flat("sem_logits", 3),
        )
        return Prediction(color=color, semantic=semantic, depth=outputs["depth"], colour_gaussians=colour_gaussians)

    @property
    def observed_colour(self) -> bool:
        return self.colour_gaussians == "observed"

    def for_cloud(self) -> Gaussians:
        """Colour geometry and colour, with the same pixel's semantic logits as features."""
        return self.color.with_features(self.semantic.features)
