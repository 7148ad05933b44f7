"""Network configuration: one dataclass, two presets ("tiny" for CPU/robots, "paper" for the full model).

Usage:
    cfg = ModelConfig.preset("tiny", num_classes=13, depth_mode="estimated")
    cfg2 = ModelConfig.from_dict(cfg.to_dict())      # JSON round trip (checkpoints embed this)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, Optional

PresetName = Literal["tiny", "paper"]
DepthMode = Literal["sensor", "estimated"]
GateMode = Literal["straight_through", "soft"]
ColourGaussians = Literal["learned", "observed"]


@dataclass(frozen=True)
class ModelConfig:
    """Every size and constant of GSsplatNet; the preset name is informational (overrides are allowed)."""

    name: str = "tiny"  # preset this config was built from ("tiny" | "paper")
    num_classes: int = 20  # C: semantic classes predicted (labels 0..C-1; the ignore label lives in LossConfig)
    class_names: tuple[str, ...] = ()  # optional display names, len C when given
    sh_degree: int = 0  # colour SH degree 0..3
    depth_mode: DepthMode = "sensor"  # sensor: depth is an input; estimated: cascaded cost volume
    # ---------------------------------------------------------------- encoder / decoders
    stem_channels: int = 16  # conv 3 -> stem at H (paper 32)
    color_channels: int = 48  # F_r at H/2 (paper 64)
    semantic_channels: int = 64  # F_s at H/4 (paper 64)
    encoder_blocks: int = 2  # residual blocks per stride-2 stage (the first one strides)
    attention_blocks: int = 2  # [residual + self-attention] blocks at H/4 (paper 3)
    attention_heads: int = 4
    attention_kv_stride: int = 4  # keys/values average-pooled by this (1 = full attention, as in the paper)
    norm_groups: int = 8  # GroupNorm groups (reduced to a divisor of the channel count)
    decoder_channels: int = 16  # full-resolution feature width of both decoders (paper 64)
    head_hidden: int = 24  # hidden width of the two-conv Gaussian heads (paper 2 x 64)
    semantic_geometry: bool = False  # world height + surface tilt cues into the semantic branch (z-up world)
    geometry_hidden: int = 32  # width of the small conv net that embeds those cues at H/4
    # ---------------------------------------------------------------- spatial-unit aggregation
    aggregate: bool = True  # point-level interaction across views
    voxel_size_m: float = 0.1  # spatial unit edge length
    aggregate_kernel: int = 1  # kernel of the conv that reduces [own, pooled] (paper 3)
    hash_table_size: int = 0  # voxel hash slots; 0 = next power of two >= 2 V H W
    # ---------------------------------------------------------------- Gaussian parameters
    scale_min: float = 0.5  # scale = (min + (max - min) sigmoid(x)) * depth * multiplier * (1/fx + 1/fy)
    scale_max: float = 15.0
    scale_multiplier: float = 0.1
    init_scale_px: float = 0.7  # the scale-logit bias makes the initial std about this many pixels
    offset_far_m: float = 10.0  # an offset moves a centre by at most depth / offset_far_m per camera axis
    gate: GateMode = "straight_through"  # offset gate: hard forward + sigmoid gradient, or soft sigmoid
    gate_bias_init: float = -1.0  # initial gate logit of every pixel: all closed, sigmoid 0.27 (a live gradient)
    # learned: the colour head predicts each colour Gaussian's offset, scale, rotation, opacity and a residual
    # on the observed colour. observed: each colour Gaussian is its pixel's observation by construction (the
    # unprojected depth, the camera's colour, opacity `observed_opacity`, an isotropic std of
    # `observed_footprint_px` pixels of its own view), rendered without screen-space dilation and divided by
    # the rendered alpha (render.colour_settings). A blurred footprint cannot give back what the camera saw:
    # any footprint near a pixel averages neighbours whose colours change from pixel to pixel
    # (docs/colour_diagnosis.md); a 0.2 px one reproduces its own view and, normalised by alpha, still
    # covers the cracks of nearby views.
    colour_gaussians: ColourGaussians = "learned"
    observed_footprint_px: float = 0.2
    observed_opacity: float = 0.5  # below 1, views that see the same surface blend (less sensor noise)
    # ---------------------------------------------------------------- depth estimation (estimated mode)
    near_m: float = 0.1  # depth range of the plane sweep; also normalises the depth fed to the decoder
    far_m: float = 10.0
    sweep_near_m: Optional[float] = None  # plane-sweep range when it differs from [near_m, far_m] (None: the same);
    sweep_far_m: Optional[float] = None  # the decoder's depth normalisation keeps far_m either way
    sweep_inverse_depth: bool = False  # level 0 planes uniform in 1/depth (finer near the camera) instead of depth
    depth_candidates: tuple[int, ...] = (32, 16, 8)  # per level, coarse (H/4) -> fine (H) (paper 48/32/16)
    depth_feature_channels: tuple[int, ...] = (16, 16, 8)  # matching features per level (multiples of groups)
    cost_groups: int = 8  # G of the group-wise correlation
    cost_channels: tuple[int, ...] = (8, 8, 4)  # 3D regulariser width per level
    cost_unet: bool = False  # one-level 3D U-Net regulariser instead of plain 3D convs
    photometric_cost: bool = False  # add each level's colour difference (mean |I_ref - I_warped|) as one more cost channel
    depth_neighbors: int = 3  # each view is matched against up to this many nearest views
    # 0: the cost volume runs at the input size. W > 0: for an input at least twice as wide it runs on the
    # images area-averaged by the largest power of two f with width / f >= W, and its depth is upsampled
    # (a cost volume trained at W; see GSsplatNet.estimated_depth)
    depth_reference_width: int = 0
    # > 0: after the cascade, a local colour plane sweep with this many candidates within a factor
    # 1 +- depth_refine_range of its depth, box filter radius depth_refine_radius (model/depth_refine.py)
    depth_refine_planes: int = 0
    depth_refine_range: float = 0.4
    depth_refine_radius: int = 1
    # estimated mode: the cascade reads its own backbone (stem and both stages, `depth_encoder.*`) instead of
    # the shared encoder's, and the semantic branch gets the final depth pooled to H/4 as in sensor mode.
    # Written by maint/compose.py, which joins a sensor model's network to an estimated model's depth.
    depth_encoder: bool = False

    # ----------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first inconsistent field."""
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}")
        if not 0 <= self.sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0..3, got {self.sh_degree}")
        if self.depth_mode not in ("sensor", "estimated"):
            raise ValueError(f"depth_mode must be 'sensor' or 'estimated', got {self.depth_mode!r}")
        if self.gate not in ("straight_through", "soft"):
            raise ValueError(f"gate must be 'straight_through' or 'soft', got {self.gate!r}")
        if self.voxel_size_m <= 0:
            raise ValueError(f"voxel_size_m must be positive, got {self.voxel_size_m}")
        if not 0 < self.near_m < self.far_m:
            raise ValueError(f"need 0 < near_m < far_m, got {self.near_m}, {self.far_m}")
        near, far = self.sweep_range
        if not 0 < near < far:
            raise ValueError(f"need 0 < sweep_near_m < sweep_far_m, got {near}, {far}")
        if self.depth_refine_planes and (self.depth_refine_planes < 3 or not 0 < self.depth_refine_range < 1
                                         or self.depth_refine_radius < 0):
            raise ValueError("depth refinement needs depth_refine_planes >= 3, 0 < depth_refine_range < 1 and "
                             f"depth_refine_radius >= 0, got {self.depth_refine_planes}, {self.depth_refine_range}, "
                             f"{self.depth_refine_radius}")
        if self.depth_encoder and self.depth_mode != "estimated":
            raise ValueError("depth_encoder needs depth_mode 'estimated'")
        if self.colour_gaussians not in ("learned", "observed"):
            raise ValueError(f"colour_gaussians must be 'learned' or 'observed', got {self.colour_gaussians!r}")
        if not self.observed_footprint_px > 0 or not 0 < self.observed_opacity <= 1:
            raise ValueError("need observed_footprint_px > 0 and 0 < observed_opacity <= 1, got "
                             f"{self.observed_footprint_px}, {self.observed_opacity}")
        if self.offset_far_m <= 0:
            raise ValueError(f"offset_far_m must be positive, got {self.offset_far_m}")
        levels = len(self.depth_candidates)
        if levels != 3 or len(self.depth_feature_channels) != 3 or len(self.cost_channels) != 3:
            raise ValueError("depth_candidates, depth_feature_channels and cost_channels need 3 levels each")
        for c in self.depth_feature_channels:
            if c % self.cost_groups:
                raise ValueError(f"depth_feature_channels {c} is not a multiple of cost_groups {self.cost_groups}")
        if self.semantic_channels % self.attention_heads:
            raise ValueError(f"semantic_channels must be a multiple of attention_heads ({self.attention_heads})")
        if self.aggregate_kernel % 2 != 1:
            raise ValueError(f"aggregate_kernel must be odd, got {self.aggregate_kernel}")
        if not self.scale_min < self.init_scale_px / (2 * self.scale_multiplier) < self.scale_max:
            raise ValueError("init_scale_px is outside the range the scale formula can express")

    # ---------------------------------------------------------------- derived
    def depth_downscale(self, width: int, height: int) -> int:
        """f of `depth_reference_width` for an input of this size (1: the cost volume runs at full size)."""
        if self.depth_mode != "estimated":
            return 1
        return reference_downscale(width, height, self.depth_reference_width)

    @property
    def sweep_range(self) -> tuple[float, float]:
        """(near, far) metres of the level-0 plane sweep."""
        near = self.near_m if self.sweep_near_m is None else self.sweep_near_m
        far = self.far_m if self.sweep_far_m is None else self.sweep_far_m
        return float(near), float(far)

    @property
    def num_sh_bases(self) -> int:
        return (self.sh_degree + 1) ** 2

    @property
    def init_scale_logit(self) -> float:
        """Bias that makes (min + (max-min) sigmoid(b)) * multiplier * 2 = init_scale_px (std in pixels)."""
        factor = self.init_scale_px / (2.0 * self.scale_multiplier)
        p = (factor - self.scale_min) / (self.scale_max - self.scale_min)
        return math.log(p / (1.0 - p))

    # ---------------------------------------------------------------- construction / IO
    @staticmethod
    def preset(name: str = "tiny", **overrides: Any) -> ModelConfig:
        """A named preset with field overrides; unknown fields raise ValueError."""
        if name not in _PRESETS:
            raise ValueError(f"unknown model preset {name!r}; choose from {', '.join(_PRESETS)}")
        known = {f.name for f in fields(ModelConfig)}
        bad = sorted(set(overrides) - known)
        if bad:
            raise ValueError(f"unknown ModelConfig field(s): {', '.join(bad)}")
        return replace(_PRESETS[name], **_coerce(overrides))

    def replace(self, **changes: Any) -> ModelConfig:
        return replace(self, **_coerce(changes))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelConfig:
        """Inverse of to_dict; unknown keys raise ValueError (a newer or foreign checkpoint)."""
        known = {f.name for f in fields(ModelConfig)}
        bad = sorted(set(data) - known)
        if bad:
            raise ValueError(f"unknown ModelConfig field(s): {', '.join(bad)}")
        return ModelConfig(**_coerce(dict(data)))

    def diff(self, other: ModelConfig) -> list[str]:
        """Names of the fields whose values differ."""
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def reference_downscale(width: int, height: int, reference_width: int) -> int:
    """The largest power of two f with width / f >= reference_width and both sides divisible by 4 f
    (1 when reference_width <= 0): how far a window is shrunk towards a model's reference width."""
    factor = 1
    if reference_width <= 0:
        return factor
    while (width // (factor * 2) >= reference_width and width % (factor * 2 * 4) == 0
           and height % (factor * 2 * 4) == 0):  # fmt: skip
        factor *= 2
    return factor


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """JSON lists -> tuples for the tuple-typed fields."""
    tuple_fields = {"class_names", "depth_candidates", "depth_feature_channels", "cost_channels"}
    return {k: tuple(v) if k in tuple_fields and isinstance(v, list) else v for k, v in values.items()}


_PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(),
    "paper": ModelConfig(
        name="paper",
        sh_degree=3,
        stem_channels=32,
        color_channels=64,
        semantic_channels=64,
        encoder_blocks=2,
        attention_blocks=3,
        attention_kv_stride=1,
        norm_groups=16,
        decoder_channels=64,
        head_hidden=128,
        aggregate_kernel=3,
        depth_candidates=(48, 32, 16),
        depth_feature_channels=(32, 16, 8),
        cost_channels=(16, 8, 8),
        cost_unet=True,
    ),
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)
