# ruff: noqa: F722  (jaxtyping shape strings)
"""Per-view 2D networks: shared shallow encoder, semantic branch, colour and semantic decoders.

Usage:
    enc = Encoder(cfg)
    f = enc(images)            # EncoderFeatures: full [V,c0,H,W], color [V,c1,H/2,W/2], quarter, semantic
    color = ColorDecoder(cfg)(f.color)                       # [V, Dd, H, W]
    sem, logits = SemanticDecoder(cfg)(f.semantic, depth_q)  # [V, Dd, H, W], [V, C, H, W]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.model.attention import ResBlock, SemanticBlock, upsample2x
from gssplat_ros.model.config import ModelConfig


@dataclass
class EncoderFeatures:
    full: Tensor  # [V, stem, H, W]      stem output (also the finest matching features)
    color: Tensor  # [V, c1, H/2, W/2]   F_r
    quarter: Tensor  # [V, c2, H/4, W/4] before attention
    semantic: Tensor  # [V, cs, H/4, W/4] F_s


class Encoder(nn.Module):
    """conv 3 -> stem, two stride-2 stages of residual blocks, then the semantic [res + attn] blocks."""

    def __init__(self, cfg: ModelConfig, semantic_blocks: bool = True):
        """semantic_blocks=False: the backbone alone (no attention blocks; `semantic` is empty)."""
        super().__init__()
        g = cfg.norm_groups
        c0, c1, cs = cfg.stem_channels, cfg.color_channels, cfg.semantic_channels
        self.stem = nn.Conv2d(3, c0, 3, 1, 1)
        self.stage1 = nn.Sequential(
            ResBlock(c0, c1, g, stride=2), *[ResBlock(c1, c1, g) for _ in range(cfg.encoder_blocks - 1)]
        )
        self.stage2 = nn.Sequential(
            ResBlock(c1, cs, g, stride=2), *[ResBlock(cs, cs, g) for _ in range(cfg.encoder_blocks - 1)]
        )
        self.semantic = nn.Sequential(
            *[
                SemanticBlock(cs, cs, cfg.attention_heads, g, cfg.attention_kv_stride)
                for _ in range(cfg.attention_blocks if semantic_blocks else 0)
            ]
        )

    def backbone(self, images: Float[Tensor, "V 3 H W"]) -> tuple[Tensor, Tensor, Tensor]:
        """(full, color, quarter): everything before the semantic [res + attn] blocks."""
        x = self.stem(images * 2.0 - 1.0)
        color = self.stage1(x)
        return x, color, self.stage2(color)

    def forward(self, images: Float[Tensor, "V 3 H W"]) -> EncoderFeatures:
        full, color, quarter = self.backbone(images)
        return EncoderFeatures(full=full, color=color, quarter=quarter, semantic=self.semantic(quarter))


class ColorDecoder(nn.Module):
    """conv + bilinear x2 + GELU + conv: F_r at H/2 -> colour features at H."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.conv1 = nn.Conv2d(cfg.color_channels, cfg.decoder_channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(cfg.decoder_channels, cfg.decoder_channels, 3, 1, 1)

    def forward(self, color: Tensor) -> Tensor:
        return self.conv2(F.gelu(upsample2x(self.conv1(color))))


class SemanticDecoder(nn.Module):
    """[F_s, depth/far] at H/4 -> two residual blocks each upsampling x2 -> features at H, and 2D logits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        g, cd = cfg.norm_groups, cfg.decoder_channels
        self.up1 = ResBlock(cfg.semantic_channels + 1, cd, g, up=True)
        self.up2 = ResBlock(cd, cd, g, up=True)
        self.aux = nn.Conv2d(cd, cfg.num_classes, 1)

    def forward(self, semantic: Tensor, depth_quarter: Float[Tensor, "V 1 h w"]) -> tuple[Tensor, Tensor]:
        x = self.up2(self.up1(torch.cat([semantic, depth_quarter], dim=1)))
        return x, self.aux(x)
