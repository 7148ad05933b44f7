# ruff: noqa: F722  (jaxtyping shape strings)
"""Gaussian heads: two 3x3 convs per branch, and the map from raw channels to Gaussian parameters.

Usage:
    head = GaussianHead(in_ch=19, hidden=16, payload=3, cfg=cfg)
    raw = head(features)                                      # [V, 12 + payload, H, W]
    g = decode_gaussians(raw, geo, cfg)                       # dict of [V, H, W, ...] tensors

Raw channel layout: gate (1), offset (3), scale (3), rotation (4), opacity (1), payload (SH or logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.gaussians import rgb_to_sh_dc
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.model.geometry import normalize_channels, quat_left_matrix, rotate_maps

RAW_SPLIT = (1, 3, 3, 4, 1)  # gate, offset, scale, rotation, opacity; the payload follows
NUM_GEOMETRY_CHANNELS = sum(RAW_SPLIT)


@dataclass
class ViewGeometry:
    """What the heads need to turn raw channels into world-frame Gaussians, per pixel of every view."""

    means0: Tensor  # [V, 3, H, W] world, unprojected pixel centres (channel-first)
    depth: Tensor  # [V, H, W] metres, 0 where invalid
    valid: Tensor  # [V, H, W] float 0/1
    rot_world_from_cam: Tensor  # [V, 3, 3]
    quat_world_from_cam: Tensor  # [V, 4] wxyz
    inv_focal_sum: Tensor  # [V] 1/fx + 1/fy


class GaussianHead(nn.Module):
    """conv3x3 -> GELU -> conv3x3, initialised so that Gaussians start as pixel-sized, identity-rotated
    splats at the unprojected depth with opacity 0.5 and a zero payload residual."""

    def __init__(self, in_ch: int, hidden: int, payload: int, cfg: ModelConfig, payload_init_scale: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, hidden, 3, 1, 1)
        self.conv2 = nn.Conv2d(hidden, NUM_GEOMETRY_CHANNELS + payload, 3, 1, 1)
        with torch.no_grad():
            self.conv2.weight.mul_(0.1)
            self.conv2.weight[NUM_GEOMETRY_CHANNELS:].mul_(payload_init_scale)
            self.conv2.weight[0].zero_()  # every gate starts at gate_bias_init exactly (it still gets gradient)
            bias = torch.zeros(NUM_GEOMETRY_CHANNELS + payload)
            bias[0] = cfg.gate_bias_init
            bias[4:7] = cfg.init_scale_logit
            bias[7] = 1.0  # rotation w: identity in the camera frame
            self.conv2.bias.copy_(bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


def close_offset_gates(net: nn.Module) -> int:
    """Close every offset gate of a trained network in place (centres = unprojected depth); returns the
    number of heads changed. Used by the offsets-off ablation and when shipping weights whose learned
    offsets do not transfer to another image size (docs/training.md, "Ship")."""
    heads = [m for m in net.modules() if isinstance(m, GaussianHead)]
    with torch.no_grad():
        for head in heads:
            head.conv2.weight[0].zero_()
            head.conv2.bias[0] = -1e4  # gate logit channel: closed everywhere, for any input
    return len(heads)


def offset_gate(logits: Tensor, mode: str) -> tuple[Tensor, Tensor]:  # any shape in, the same shape out
    """(gate, soft): gate in [0, 1] for the losses, soft = sigmoid(logits).

    straight-through: gate is hard 0/1 in the forward pass with the sigmoid's gradient; soft: gate = soft.
    """
    soft = torch.sigmoid(logits)
    if mode == "soft":
        return soft, soft
    hard = (soft > 0.5).to(soft.dtype)
    return hard + (soft - soft.detach()), soft  # (x - x) = 0 exactly: the forward value is exactly hard


def gated_offsets(offsets: Tensor, logits: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """(gate * offset, gate) per pixel: logits [...] with offsets [..., 3], or logits [V, 1, H, W] with
    channel-first offsets [V, 3, H, W] (same number of dimensions: they broadcast as they are).

    With the straight-through gate the forward value is hard * offset, exactly 0 for a closed gate, but
    the gradient is that of soft * offset: the gate learns whether its offset would help, and the offset
    itself keeps learning while its gate is still closed (a plain hard * offset would give it no gradient
    until the gate opens).
    """
    gate, soft = offset_gate(logits, mode)
    per_vector = soft if soft.dim() == offsets.dim() else soft[..., None]
    if mode == "soft":
        return per_vector * offsets, gate
    hard = (per_vector.detach() > 0.5).to(soft.dtype)
    relaxed = per_vector * offsets
    return hard * offsets.detach() + (relaxed - relaxed.detach()), gate


def decode_gaussians(
    raw: Float[Tensor, "V Ch H W"], geo: ViewGeometry, cfg: ModelConfig, with_payload: bool = True
) -> dict[str, Tensor]:
    """Raw head channels -> world-frame Gaussian parameters per pixel.

    The maths runs channel-first (see geometry: onnxruntime broadcasts much faster that way); the
    results are turned channel-last once at the end. Returns a dict with means [V,H,W,3], quats [V,H,W,4]
    (wxyz, unit, world), scales [V,H,W,3] (m), opacities [V,H,W], gate_logits [V,H,W], gate [V,H,W],
    offsets [V,H,W,3] (world, before gating) and, with_payload, payload [V,H,W,P].
    """
    num_views, _, height, width = raw.shape
    # The torch CPU runtime's convolutions return channels-last memory, where each channel slice below
    # is a strided view and every elementwise op on it crawls (tanh of the [V, 3, H, W] offsets: 3.6 ms
    # at V=4 160x120); one copy to NCHW first is cheaper (sensor window 231 -> 223 ms). No-op otherwise.
    raw = raw.contiguous()
    gate_logits, off_raw, scale_raw, rot_raw, opa_raw, payload = torch.split(
        raw, [*RAW_SPLIT, raw.shape[1] - NUM_GEOMETRY_CHANNELS], dim=1
    )  # [V, 1|3|3|4|1|P, H, W]
    depth = geo.depth[:, None]  # [V, 1, H, W]
    # offsets: at most depth / offset_far_m along each camera axis, rotated to the world
    offset_cam = torch.tanh(off_raw) * (depth / cfg.offset_far_m)
    offsets = rotate_maps(geo.rot_world_from_cam, offset_cam)  # [V, 3, H, W]
    gate_logits = gate_logits[:, 0]  # [V, H, W]: the returned tensor is the one the gate is made from
    applied, gate = gated_offsets(offsets, gate_logits[:, None], cfg.gate)  # [V, 3, H, W], [V, 1, H, W]
    means = geo.means0 + applied
    # scales: (min + (max-min) sigmoid) * depth * multiplier * (1/fx + 1/fy); depth floored at near_m
    size = cfg.scale_min + (cfg.scale_max - cfg.scale_min) * torch.sigmoid(scale_raw)
    footprint = depth.clamp(min=cfg.near_m) * cfg.scale_multiplier * geo.inv_focal_sum[:, None, None, None]
    scales = size * footprint
    # rotation: predicted in the camera frame, composed with the camera's world rotation (one matmul)
    local = normalize_channels(rot_raw, dim=1, eps=1e-8).reshape(num_views, 4, height * width)
    quats = normalize_channels(torch.bmm(quat_left_matrix(geo.quat_world_from_cam), local), dim=1)  # [V, 4, HW]
    opacities = torch.sigmoid(opa_raw[:, 0]) * geo.valid

    def channel_last(t: Tensor) -> Tensor:
        return t.reshape(num_views, -1, height, width).permute(0, 2, 3, 1).contiguous()

    out = {
        "means": channel_last(means),
        "quats": channel_last(quats),
        "scales": channel_last(scales),
        "opacities": opacities,
        "gate_logits": gate_logits,
        "gate": gate[:, 0],
        "offsets": channel_last(offsets),
    }
    if with_payload:
        out["payload"] = channel_last(payload)
    return out


def observed_colour_gaussians(
    images: Float[Tensor, "V 3 H W"], geo: ViewGeometry, cfg: ModelConfig, num_bases: int
) -> tuple[dict[str, Tensor], Tensor]:
    """The colour set of `colour_gaussians: observed`: every valid pixel's observation, by construction.

    Returns (the dict decode_gaussians returns, with closed gates and zero offsets; SH [V, H, W, K, 3] whose
    DC is the observed colour and higher orders 0). Each Gaussian sits at its pixel's unprojected depth with
    an isotropic std of `observed_footprint_px` pixels of its own view, so rendered back into that view it
    covers its own pixel and (almost) nothing of its neighbours'.
    """
    num_views, _, height, width = images.shape
    depth = geo.depth.clamp(min=cfg.near_m)  # [V, H, W]
    std = cfg.observed_footprint_px * depth * (0.5 * geo.inv_focal_sum)[:, None, None]  # [V, H, W] metres
    zeros = torch.zeros_like(geo.depth)  # [V, H, W]
    # isotropic: any rotation renders the same. Built by concatenation, not an in-place write, which ONNX
    # would export as a ScatterND that TensorRT rejects.
    identity = torch.stack([torch.ones_like(zeros), zeros, zeros, zeros], dim=-1)  # [V, H, W, 4] wxyz
    colour = {
        "means": geo.means0.permute(0, 2, 3, 1).contiguous(),
        "quats": identity,
        "scales": std[..., None].expand(num_views, height, width, 3).contiguous(),
        "opacities": cfg.observed_opacity * geo.valid,
        "gate_logits": zeros,
        "gate": zeros,
        "offsets": torch.zeros(num_views, height, width, 3, dtype=images.dtype, device=images.device),
    }
    dc = rgb_to_sh_dc(images).permute(0, 2, 3, 1)[:, :, :, None]  # [V, H, W, 1, 3]
    higher = dc.new_zeros(num_views, height, width, num_bases - 1, 3)
    return colour, torch.cat([dc, higher], dim=3)
