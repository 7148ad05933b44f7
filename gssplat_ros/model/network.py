# ruff: noqa: F722  (jaxtyping shape strings)
"""GSsplatNet: V posed RGB(-D) views -> per-pixel colour and semantic Gaussians (plus training extras).

Usage:
    net = GSsplatNet(ModelConfig.preset("tiny"))
    out = net(images, K, world_from_cam, cam_from_world, depth)     # dict; every OUTPUT_NAMES entry
    pred = Prediction.from_outputs(out)
    pooled = pool_on_host(color_feat, sem_feat, slot, columns, table_size)  # between the split graphs
The graph wrappers for ONNX export (one graph, or the split graphs for onnxruntime on the CPU) live in
gssplat_ros/export/graphs.py.

Shapes: images [V,3,H,W] in [0,1]; K [V,3,3] pixels; world_from_cam / cam_from_world [V,4,4] (OpenCV
axes; the inverse is computed on the host); depth [V,1,H,W] metres (0 = invalid) in sensor mode, None
in estimated mode. V >= 2; H and W divisible by 4.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.gaussians import rgb_to_sh_dc
from gssplat_ros.model.aggregation import (
    SpatialAggregation,
    VoxelIndex,
    pooled_maps,
    voxel_index_maps,
)
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.model.depth import CascadeDepth, nearest_views, scale_intrinsics
from gssplat_ros.model.depth_refine import refine_depth
from gssplat_ros.model.encoder import ColorDecoder, Encoder, SemanticDecoder
from gssplat_ros.model.geometry import (
    SHRotation,
    masked_avg_pool,
    rotmat_to_quat,
    sh_damping,
    unproject_maps,
)
from gssplat_ros.model.heads import (
    NUM_GEOMETRY_CHANNELS,
    GaussianHead,
    ViewGeometry,
    decode_gaussians,
    observed_colour_gaussians,
)
from gssplat_ros.model.semantic_geometry import NUM_GEOMETRY_CUES, GeometryEmbedding, quarter_geometry


class _Trunk(NamedTuple):
    """What both output paths share (see GSsplatNet._trunk)."""

    color: Tensor  # [V, c1, H/2, W/2] F_r
    depth_levels: list  # [V, 1, h, w] per cascade level, coarse to fine (empty in sensor mode)
    depth_full: Tensor  # [V, H, W] metres
    valid: Tensor  # [V, H, W] 0/1
    means0: Tensor  # [V, 3, H, W] world (channel-first)
    index: Optional[VoxelIndex]  # voxel table of all valid pixels (None without aggregation)
    sem_feat: Tensor  # [V, Dd, H, W] semantic features before aggregation
    context_logits: Tensor  # [V, C, H, W]


class GSsplatNet(nn.Module):
    """The GSsplat encoder (see ARCHITECTURE.md section 1 and the package docstrings of each part)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        cd = cfg.decoder_channels
        self.encoder = Encoder(cfg)
        self.color_decoder = ColorDecoder(cfg)
        self.semantic_decoder = SemanticDecoder(cfg)
        self.depth_net = CascadeDepth(cfg) if cfg.depth_mode == "estimated" else None
        # the cascade's own backbone (cfg.depth_encoder; see maint/compose.py), else the shared one
        self.depth_encoder = Encoder(cfg, semantic_blocks=False) if cfg.depth_encoder else None
        if cfg.aggregate:
            self.color_aggregate = SpatialAggregation(cd, cfg.aggregate_kernel)
            self.semantic_aggregate = SpatialAggregation(cd, cfg.aggregate_kernel)
        self.color_head = GaussianHead(cd + 3, cfg.head_hidden, 3 * cfg.num_sh_bases, cfg)
        self.semantic_head = GaussianHead(cd, cfg.head_hidden, cfg.num_classes, cfg, payload_init_scale=1.0)
        self.semantic_geometry = (
            GeometryEmbedding(NUM_GEOMETRY_CUES, cfg.geometry_hidden, cfg.semantic_channels)
            if cfg.semantic_geometry
            else None
        )
        # training only: the share of windows whose semantic branch gets no geometry cues, so that it also
        # learns what the images show instead of leaning on height alone (train.py sets it)
        self.geometry_dropout = 0.0
        self.sh_rotation = SHRotation(cfg.sh_degree)
        # [K * 3, 1, 1]: one factor per channel of the channel-first SH payload (channel k * 3 + rgb)
        damping = sh_damping(cfg.sh_degree).repeat_interleave(3)[:, None, None]
        self.register_buffer("sh_damping", damping, persistent=False)

    # ------------------------------------------------------------------------------------------
    def _check_inputs(self, images, K, world_from_cam, cam_from_world, depth) -> None:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [V, 3, H, W], got {tuple(images.shape)}")
        num_views, _, height, width = images.shape
        if num_views < 2:
            raise ValueError(f"images: need V >= 2 views, got {num_views}")
        if height % 4 or width % 4:
            raise ValueError(f"images: H and W must be divisible by 4, got {height}x{width}")
        for name, t, shape in (
            ("K", K, (num_views, 3, 3)),
            ("world_from_cam", world_from_cam, (num_views, 4, 4)),
            ("cam_from_world", cam_from_world, (num_views, 4, 4)),
        ):
            if tuple(t.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
        if self.cfg.depth_mode == "sensor":
            if depth is None:
                raise ValueError("depth: the sensor-depth model needs depth [V, 1, H, W]")
            if tuple(depth.shape) != (num_views, 1, height, width):
                raise ValueError(f"depth must have shape {(num_views, 1, height, width)}, got {tuple(depth.shape)}")

    def forward(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
        depth: Optional[Float[Tensor, "V 1 H W"]] = None,
    ) -> dict:
        """Predict per-pixel Gaussians for every view.

        Returns:
            dict with every name of prediction.OUTPUT_NAMES ([V, H, W, ...]) plus training extras:
            context_logits [V,C,H,W] (2D logits of the semantic decoder), means0 [V,H,W,3] (unprojected
            centres), valid [V,H,W], color_gate_logits / sem_gate_logits [V,H,W], color_gate / sem_gate
            [V,H,W] (the gate values used: 0/1 forward with the straight-through gate),
            color_offsets / sem_offsets [V,H,W,3] (world, before gating), and depth_levels (list of
            [V,1,h,w], coarse to fine; empty in sensor mode).
        """
        self._check_inputs(images, K, world_from_cam, cam_from_world, depth)
        trunk = self._trunk(images, K, world_from_cam, cam_from_world, depth)
        # an observed colour set reads no colour features: skip their decoder and pooling
        observed = self.cfg.colour_gaussians == "observed"
        color_feat = None if observed else self.color_decoder(trunk.color)
        color_feat, sem_feat = self._aggregate(color_feat, trunk.sem_feat, trunk.index)
        color, sem, sh = self._gaussians(images, K, world_from_cam, trunk.depth_full, color_feat, sem_feat,
                                         trunk.valid, trunk.means0)  # fmt: skip
        return {
            **contract_outputs(color, sem, sh, trunk.depth_full),
            # ---- training extras
            "context_logits": trunk.context_logits,
            "means0": trunk.means0.permute(0, 2, 3, 1),
            "valid": trunk.valid,
            "color_gate_logits": color["gate_logits"],
            "sem_gate_logits": sem["gate_logits"],
            "color_gate": color["gate"],
            "sem_gate": sem["gate"],
            "color_offsets": color["offsets"],
            "sem_offsets": sem["offsets"],
            "depth_levels": trunk.depth_levels,
        }

    def _aggregate(self, color_feat: Optional[Tensor], sem_feat: Tensor, index: Optional[VoxelIndex]
                   ) -> tuple[Optional[Tensor], Tensor]:
        """Spatial-unit aggregation of both branches ([V, Dd, H, W] each); both are pooled by one scatter
        (only the semantic branch when color_feat is None)."""
        if not self.cfg.aggregate:
            return color_feat, sem_feat
        if color_feat is None:
            return None, self.semantic_aggregate(sem_feat, index)
        color_pooled, sem_pooled = pooled_maps([color_feat, sem_feat], index)
        return self.color_aggregate.combine(color_feat, color_pooled), self.semantic_aggregate.combine(sem_feat, sem_pooled)

    def _gaussians(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        depth_full: Float[Tensor, "V H W"],
        color_feat: Optional[Float[Tensor, "V D H W"]],  # None for an observed colour set
        sem_feat: Float[Tensor, "V D H W"],
        valid: Optional[Tensor] = None,
        means0: Optional[Tensor] = None,
    ) -> tuple[dict, dict, Tensor]:
        """Heads and Gaussian decoding after the aggregation: (colour set, semantic set, SH [V, H, W, K, 3]).

        valid and means0 are recomputed from depth_full when not given (the split export's second graph).
        """
        cfg = self.cfg
        num_views, _, height, width = images.shape
        if valid is None:
            valid = (depth_full > 0).to(images.dtype)  # [V, H, W]
        if means0 is None:
            means0 = unproject_maps(K, depth_full, world_from_cam)  # [V, 3, H, W]
        rot = world_from_cam[:, :3, :3]
        geo = ViewGeometry(
            means0=means0,
            depth=depth_full,
            valid=valid,
            rot_world_from_cam=rot,
            quat_world_from_cam=rotmat_to_quat(rot),
            inv_focal_sum=1.0 / K[:, 0, 0] + 1.0 / K[:, 1, 1],
        )
        sem = decode_gaussians(self.semantic_head(sem_feat), geo, cfg)
        if cfg.colour_gaussians == "observed":
            color, sh = observed_colour_gaussians(images, geo, cfg, cfg.num_sh_bases)
            return color, sem, sh
        color_raw = self.color_head(torch.cat([color_feat, images], dim=1))  # [V, 12 + 3K, H, W]
        color = decode_gaussians(color_raw, geo, cfg, with_payload=False)  # SH below

        # SH: residual on top of the input colour's DC, higher orders damped, camera -> world frame.
        # Channel-first first (channel k * 3 + rgb), then [V, H, W, K, 3].
        num_bases = cfg.num_sh_bases
        sh = color_raw[:, NUM_GEOMETRY_CHANNELS:] * self.sh_damping  # [V, 3K, H, W]
        sh = torch.cat([sh[:, :3] + rgb_to_sh_dc(images), sh[:, 3:]], dim=1)
        sh = sh.permute(0, 2, 3, 1).reshape(num_views, height * width, num_bases, 3)
        sh = self.sh_rotation(sh, rot).reshape(num_views, height, width, num_bases, 3).contiguous()
        return color, sem, sh

    def _trunk(self, images, K, world_from_cam, cam_from_world, depth, refined_finest=None) -> _Trunk:
        """Encoder, depth, unprojection, voxel index and the whole semantic branch up to its head.

        refined_finest: [V, 1, h, w] the refined finest cascade level computed elsewhere (the host step of
        the onnxruntime CPU flavour, see refines_on_host); the cascade is skipped and no levels returned.
        """
        cfg = self.cfg
        height, width = images.shape[-2:]
        full, color, quarter = self.encoder.backbone(images)
        if refined_finest is not None:
            depth_levels = []
            depth_full, depth_quarter = self.depth_maps(refined_finest, None, height, width)
        elif self.depth_net is not None:
            depth_levels, depth_full, depth_quarter = self.estimated_depth(images, K, world_from_cam, cam_from_world,
                                                                           (full, color, quarter))  # fmt: skip
        else:
            depth_levels = []
            depth_full = depth[:, 0]
            depth_quarter = masked_avg_pool(depth, 4)
        valid = (depth_full > 0).to(images.dtype)  # [V, H, W]
        means0 = unproject_maps(K, depth_full, world_from_cam)  # [V, 3, H, W]
        dropped = self.training and self.geometry_dropout > 0 and float(torch.rand(())) < self.geometry_dropout
        if self.semantic_geometry is not None and not dropped:  # cues only: no semantic gradient into the cost volume
            cues = quarter_geometry(depth_quarter.detach(), K, world_from_cam, width)  # [V, 4, H/4, W/4]
            quarter = quarter + self.semantic_geometry(cues)
        sem_feat, context_logits = self.semantic_decoder(self.encoder.semantic(quarter), depth_quarter / cfg.far_m)
        index = voxel_index_maps(means0, valid, cfg.voxel_size_m, cfg.hash_table_size) if cfg.aggregate else None
        return _Trunk(color, depth_levels, depth_full, valid, means0, index, sem_feat, context_logits)

    def semantic_logits(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
        depth: Optional[Float[Tensor, "V 1 H W"]] = None,
    ) -> tuple[Float[Tensor, "V C H W"], Float[Tensor, "V H W C"]]:
        """(2D context logits, per-pixel semantic-Gaussian logits) without the colour branch.

        The same values as forward()'s `context_logits` and `sem_logits`, for the 2D semantic stage,
        which needs nothing else (the colour decoder, aggregation, head and SH rotation are skipped).
        """
        self._check_inputs(images, K, world_from_cam, cam_from_world, depth)
        trunk = self._trunk(images, K, world_from_cam, cam_from_world, depth)
        sem_feat = self.semantic_aggregate(trunk.sem_feat, trunk.index) if self.cfg.aggregate else trunk.sem_feat
        raw = self.semantic_head(sem_feat)  # [V, 12 + C, H, W]
        return trunk.context_logits, raw[:, NUM_GEOMETRY_CHANNELS:].permute(0, 2, 3, 1)

    def estimate_depth(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
    ) -> list[Float[Tensor, "V 1 h w"]]:
        """Only the encoder and the cascaded cost volume (estimated mode): depth per level, coarse to fine.

        The depth-training stage uses this; it skips the decoders, aggregation and heads.
        """
        if self.depth_net is None:
            raise ValueError("estimate_depth: this is a sensor-depth model (depth_mode 'sensor')")
        self._check_inputs(images, K, world_from_cam, cam_from_world, None)
        return self.estimated_depth(images, K, world_from_cam, cam_from_world)[0]

    def estimated_depth(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
        backbone: Optional[tuple[Tensor, Tensor, Tensor]] = None,
    ) -> tuple[list[Tensor], Float[Tensor, "V H W"], Float[Tensor, "V 1 h w"]]:
        """(cascade levels coarse to fine, depth at H x W, depth at H/4 for the semantic branch).

        With `depth_reference_width` and an input at least twice that wide, the cascade runs on the
        images area-averaged by f (cfg.depth_downscale; K scaled alike, the encoder backbone run again
        on them) and its finest level is upsampled bilinearly to H x W. Reason: a cost volume trained at
        160x120 sees disparities in pixels of that size, so on larger windows it is more accurate (and
        cheaper) at its training size, upsampled, than at the full size. The levels
        are then those of the smaller image. `backbone` reuses the full-size (full, color, quarter)
        features when f = 1 (not with cfg.depth_encoder, whose cascade has its own backbone). With
        cfg.depth_refine_planes the finest level is photometrically refined (model/depth_refine.py) before
        the upsample; the returned levels are the cascade's own.
        """
        height, width = images.shape[-2:]
        levels, small, K_small = self.cascade(images, K, world_from_cam, cam_from_world, backbone)
        finest = self._refined(levels[-1], small, K_small, world_from_cam, cam_from_world)  # [V, 1, H/f, W/f]
        depth_full, depth_quarter = self.depth_maps(finest, levels, height, width)
        return levels, depth_full, depth_quarter

    def cascade(
        self,
        images: Float[Tensor, "V 3 H W"],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
        backbone: Optional[tuple[Tensor, Tensor, Tensor]] = None,
    ) -> tuple[list[Tensor], Float[Tensor, "V 3 h w"], Float[Tensor, "V 3 3"]]:
        """(the cascade's levels coarse to fine, unrefined; the images and K at the finest level's size,
        H/f x W/f with f = cfg.depth_downscale): the part of estimated_depth before the refinement."""
        height, width = images.shape[-2:]
        factor = self.cfg.depth_downscale(width, height)
        own = self.depth_encoder is not None
        depth_backbone = self.depth_encoder.backbone if own else self.encoder.backbone
        if factor == 1:
            full, color, quarter = backbone if backbone is not None and not own else depth_backbone(images)
            levels = self.depth_net([quarter, color, full], K, world_from_cam, cam_from_world, width, images)
            return levels, images, K
        small = F.avg_pool2d(images, factor)  # [V, 3, H/f, W/f]
        K_small = scale_intrinsics(K, 1.0 / factor)
        full, color, quarter = depth_backbone(small)
        levels = self.depth_net([quarter, color, full], K_small, world_from_cam, cam_from_world, width // factor, small)
        return levels, small, K_small

    def depth_maps(self, finest: Float[Tensor, "V 1 h w"], levels: Optional[list], height: int,
                   width: int) -> tuple[Float[Tensor, "V H W"], Float[Tensor, "V 1 H/4 W/4"]]:
        """(depth at H x W, depth at H/4 for the semantic branch) from the (refined) finest level: the part of
        estimated_depth after the refinement. `levels` is read only by a model without cfg.depth_encoder
        whose cascade runs at the input size (its H/4 depth is the coarse level)."""
        own = self.depth_encoder is not None
        if finest.shape[-1] == width:
            # a composed model's semantic branch was trained on sensor depth pooled to H/4
            return finest[:, 0], masked_avg_pool(finest, 4) if own else levels[0]
        depth_full = F.interpolate(finest, size=(height, width), mode="bilinear", align_corners=False)  # [V,1,H,W]
        # the semantic branch's H/4 depth: the finest level pooled, which labelled validation rooms better
        # than the coarse level upsampled
        depth_quarter = masked_avg_pool(depth_full, 4) if own else F.avg_pool2d(depth_full, 4)  # [V, 1, H/4, W/4]
        return depth_full[:, 0], depth_quarter

    def refines_on_host(self, width: int, height: int) -> bool:
        """Whether the onnxruntime CPU flavour runs this model's refinement between two graphs, on the host
        (export scatter="host"; see DepthGraph): an estimated model with cfg.depth_refine_planes whose
        depth maps need only the refined finest level (its own depth encoder, or a downscaled cascade)."""
        cfg = self.cfg
        return (self.depth_net is not None and cfg.depth_refine_planes > 0
                and (cfg.depth_encoder or cfg.depth_downscale(width, height) > 1))

    def _refined(self, depth: Tensor, images: Tensor, K: Tensor, world_from_cam: Tensor, cam_from_world: Tensor) -> Tensor:
        """The cascade's finest depth [V, 1, h, w], photometrically refined when the config asks for it
        (cfg.depth_refine_planes; images and K at the depth's size). The cascade's levels stay as they are
        (the depth loss reads them)."""
        cfg = self.cfg
        if not cfg.depth_refine_planes:
            return depth
        nbrs = nearest_views(world_from_cam, min(cfg.depth_neighbors, images.shape[0] - 1))
        return refine_depth(depth, images, K, world_from_cam, cam_from_world, nbrs, cfg.depth_refine_planes,
                            cfg.depth_refine_range, cfg.depth_refine_radius)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def contract_outputs(color: dict, sem: dict, sh: Tensor, depth_full: Tensor) -> dict:
    """The OUTPUT_NAMES entries ([V, H, W, ...]) from the decoded Gaussian sets."""
    return {
        "color_means": color["means"],
        "color_quats": color["quats"],
        "color_scales": color["scales"],
        "color_opacities": color["opacities"],
        "color_sh": sh,
        "sem_means": sem["means"],
        "sem_quats": sem["quats"],
        "sem_scales": sem["scales"],
        "sem_opacities": sem["opacities"],
        "sem_logits": sem["payload"],
        "depth": depth_full,
    }


def pool_on_host(color_feat: Tensor, sem_feat: Tensor, slot: Tensor, columns: Tensor, table_size: int):
    """The pooling between the two split graphs: (color_pooled, sem_pooled), [V, Dd, H, W] each."""
    index = VoxelIndex(slot, columns[:, 1:2], columns[:, 2:3], columns[:, 0:1], table_size)
    return tuple(pooled_maps([color_feat, sem_feat], index))
