# ruff: noqa: F722  (jaxtyping shape strings)
"""Cascaded plane-sweep depth (estimated-depth mode): 3 levels H/4 -> H/2 -> H, group-wise correlation.

Usage:
    net = CascadeDepth(cfg)
    levels = net([f_quarter, f_half, f_full], K, world_from_cam, cam_from_world)   # [V,1,h_l,w_l] x 3

Level 0 sweeps `depth_candidates[0]` planes over the sweep range (`sweep_near_m`..`sweep_far_m`, by default
near_m..far_m; uniform in depth, or in inverse depth); each finer level sweeps `depth_candidates[l]`
planes around the upsampled (detached) previous depth, at half the previous spacing. Every view is
matched against its k = min(depth_neighbors, V - 1) nearest views (camera centre distance plus a
viewing-direction term). Neighbour features are warped with 4-D grid_sample
only: the depth candidates are folded into the height axis, so the graph holds no 5-D grid_sample.
Group-wise correlation (G groups) is averaged over the neighbours, regularised by small 3D convs (or a
one-level 3D U-Net) and turned into depth by a softmax expectation over the candidates. With
`photometric_cost` the regulariser also gets the plain colour difference of the image pair at the
level's resolution (mean over RGB of |I_ref - I_warped|, averaged over the neighbours) as channel G + 1:
learned features at H/4 blur the texture that a direct colour comparison still resolves.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from gssplat_ros.model.attention import group_norm, upsample2x
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.model.geometry import pixel_rays


def nearest_views(world_from_cam: Float[Tensor, "V 4 4"], k: int, direction_weight_m: float = 1.0) -> Tensor:
    """[V, k] int64 indices of each view's k nearest other views (static k; no self matches)."""
    num_views = world_from_cam.shape[0]
    centers = world_from_cam[:, :3, 3]
    forward = world_from_cam[:, :3, 2]
    dist = torch.linalg.vector_norm(centers[:, None, :] - centers[None, :, :], dim=-1)  # [V, V]
    dist = dist + direction_weight_m * (1.0 - torch.matmul(forward, forward.transpose(0, 1)))
    idx = torch.arange(num_views, device=dist.device)
    dist = dist + 1e6 * (idx[:, None] == idx[None, :]).to(dist.dtype)  # never match a view with itself
    return torch.topk(dist, k, dim=1, largest=False).indices


def scale_intrinsics(K: Float[Tensor, "V 3 3"], factor: float) -> Tensor:
    """Intrinsics for an image scaled by `factor` (pixel centres at +0.5 stay aligned)."""
    scale = torch.tensor([[factor, 0.0, factor], [0.0, factor, factor], [0.0, 0.0, 1.0]], dtype=K.dtype)
    return K * scale.to(K.device)


class CostRegularizer(nn.Module):
    """[V, G, D, h, w] correlation -> [V, D, h, w] candidate logits with small 3D convs (opt. a 3D U-Net)."""

    def __init__(self, groups: int, channels: int, norm_groups: int, unet: bool):
        super().__init__()
        self.unet = unet

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv3d(cin, cout, 3, stride, 1), group_norm(cout, norm_groups), nn.ReLU(inplace=True)
            )

        self.enc = block(groups, channels)  # `groups` input channels: G correlations (+ 1 photometric)
        if unet:
            self.down = block(channels, 2 * channels, stride=2)
            self.mid = block(2 * channels, 2 * channels)
            self.up = block(2 * channels, channels)
        else:
            self.mid = block(channels, channels)
        self.out = nn.Conv3d(channels, 1, 3, 1, 1)

    # Export-time option (the onnxruntime CPU flavour sets it): with at most this many depth planes, each
    # stride-1 3x3x3 convolution is exported as one 2D convolution over depth-stacked channels (see
    # fold_depth_conv). onnxruntime's CPU Conv has a blocked fast path for 2D only: at the tiny preset's
    # finest level (8 planes, V=4 160x120) 29.4 -> 19.3, 13.4 -> 8.6 and 6.1 -> 4.5 ms; with 16 or 32
    # planes the folded form is 2-3.5x slower, so 0 (off) elsewhere.
    fold_planes_up_to: int = 0

    def _run(self, module: nn.Module, x: Tensor, fold: bool) -> Tensor:
        """module(x), with each foldable Conv3d inside it run through fold_depth_conv when `fold`."""
        if not fold:
            return module(x)
        if isinstance(module, nn.Sequential):
            for m in module:
                x = self._run(m, x, fold)
            return x
        if isinstance(module, nn.Conv3d) and module.kernel_size == (3, 3, 3) and module.stride == (1, 1, 1) \
                and module.padding == (1, 1, 1) and module.dilation == (1, 1, 1) and module.groups == 1:
            return fold_depth_conv(x, module)
        return module(x)

    def forward(self, cost: Tensor) -> Tensor:
        exporting = torch.onnx.is_in_onnx_export()
        fold = exporting and 0 < cost.shape[2] <= self.fold_planes_up_to
        if cost.device.type == "cpu" and not exporting:
            # oneDNN's CPU conv3d runs 2-3x faster on channels-last input than on NCDHW (measured on the
            # tiny preset, V=4 160x120, 2 threads: the three regularisers 324 -> 179 ms). Same values up to
            # float rounding (generated room: depth within 1.3 mm, 99.9% of pixels within 0.2 mm).
            cost = cost.contiguous(memory_format=torch.channels_last_3d)
        x = self._run(self.enc, cost, fold)
        if self.unet:
            y = self._run(self.mid, self.down(x), fold)
            y = F.interpolate(y, size=x.shape[2:], mode="trilinear", align_corners=False)
            x = x + self._run(self.up, y, fold)
        else:
            x = self._run(self.mid, x, fold)
        return self._run(self.out, x, fold)[:, 0].contiguous()


def fold_depth_conv(x: Float[Tensor, "V C D h w"], conv: nn.Conv3d) -> Float[Tensor, "V Co D h w"]:
    """conv(x) for a stride-1, padding-1 3x3x3 Conv3d, computed as one 2D convolution over the D planes
    stacked into channels: input channel c * D + e, output channel o * D + d, weight block (d, e) = the
    3D kernel's depth slice e - d + 1 where |e - d| <= 1 (zero elsewhere, which is the zero padding)."""
    num_views, channels, planes, height, width = x.shape
    weight = conv.weight  # [Co, C, 3, 3, 3]
    out_channels = weight.shape[0]
    blocks = []
    for d in range(planes):  # output plane d reads input planes d-1, d, d+1
        row = [weight[:, :, e - d + 1] if abs(e - d) <= 1 else weight.new_zeros(out_channels, channels, 3, 3)
               for e in range(planes)]  # fmt: skip
        blocks.append(torch.stack(row, dim=2))  # [Co, C, D, 3, 3]
    folded = torch.stack(blocks, dim=1).reshape(out_channels * planes, channels * planes, 3, 3)
    bias = None if conv.bias is None else conv.bias.repeat_interleave(planes)
    y = F.conv2d(x.reshape(num_views, channels * planes, height, width), folded, bias, padding=1)
    return y.reshape(num_views, out_channels, planes, height, width)


class CascadeDepth(nn.Module):
    """Three-level cascaded MVS depth on features of the shared encoder."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        in_channels = (cfg.semantic_channels, cfg.color_channels, cfg.stem_channels)  # H/4, H/2, H
        self.match = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cm, 3, 1, 1), group_norm(cm, cfg.norm_groups), nn.SiLU(), nn.Conv2d(cm, cm, 1))
            for cin, cm in zip(in_channels, cfg.depth_feature_channels)
        )
        self.regularize = nn.ModuleList(
            CostRegularizer(cfg.cost_groups + int(cfg.photometric_cost), cr, cfg.norm_groups, cfg.cost_unet)
            for cr in cfg.cost_channels
        )

    def candidates(self, level: int, prev: Tensor | None, shape: tuple[int, int, int]) -> Float[Tensor, "V D h w"]:
        """Depth planes of one level: spread over the sweep range at level 0, centred on the previous estimate after.

        Level 0 is uniform in depth, or in inverse depth with `sweep_inverse_depth`. Level l > 0 spaces its
        planes at the level-0 spacing / 2^l around the previous depth; for inverse sampling that spacing is
        the level-0 inverse-depth step at the previous depth (d^2 x step), so each pixel refines at its own scale.
        """
        cfg = self.cfg
        num_views, height, width = shape
        count = cfg.depth_candidates[level]
        near, far = cfg.sweep_range
        intervals = cfg.depth_candidates[0] - 1
        if prev is None:
            device = self.match[0][0].weight.device
            if cfg.sweep_inverse_depth:
                planes = 1.0 / torch.linspace(1.0 / near, 1.0 / far, count, device=device)
            else:
                planes = torch.linspace(near, far, count, device=device)
            return planes[None, :, None, None].expand(num_views, count, height, width)
        center = upsample2x(prev.detach())  # [V, 1, h, w]
        steps = torch.arange(count, dtype=prev.dtype, device=prev.device) - (count - 1) / 2.0
        if cfg.sweep_inverse_depth:
            spacing = center * center * ((1.0 / near - 1.0 / far) / intervals / (2.0**level))
        else:
            spacing = (far - near) / intervals / (2.0**level)
        return (center + steps[None, :, None, None] * spacing).clamp(min=near)

    def cost_volume(
        self, feats: Tensor, K: Tensor, world_from_cam: Tensor, cam_from_world: Tensor, planes: Tensor, nbrs: Tensor,
        images: Optional[Tensor] = None,
    ) -> Float[Tensor, "V G D h w"]:
        """Group-wise correlation of each view with its warped neighbours, averaged over neighbours.

        With `images` ([V, 3, h, w], the level's resolution) a (G+1)-th channel holds the mean absolute
        colour difference of the reference and the warped neighbour image, warped by the same grid.
        """
        num_views, channels, height, width = feats.shape
        groups = self.cfg.cost_groups
        count = planes.shape[1]
        rays = pixel_rays(K, height, width).reshape(num_views, height * width, 3).transpose(1, 2)  # [V,3,hw]
        ref = feats[:, :, None]  # [V, C, 1, h, w]
        # Mean over each group's channels as a grouped 1x1 convolution: the same sum, but onnxruntime runs a
        # Conv far faster than a ReduceMean over a middle axis of a 6-D tensor (measured: 83 ms of a V=4 window).
        # With one channel per group (the finest level of the tiny preset) the mean is the product itself.
        group_mean = None if channels == groups else torch.full(
            (groups, channels // groups, 1, 1), groups / channels, dtype=feats.dtype, device=feats.device)
        rot_wc, t_wc = world_from_cam[:, :3, :3], world_from_cam[:, :3, 3:]
        depth = planes.reshape(num_views, 1, count, height * width)
        total = torch.zeros(num_views, groups, count, height, width, dtype=feats.dtype, device=feats.device)
        source = feats
        if images is not None:
            photo = torch.zeros(num_views, 1, count * height, width, dtype=feats.dtype, device=feats.device)
            ref_rgb = images.repeat(1, 1, count, 1)  # [V, 3, D*h, w]: the same rows for every plane
            # Features and colours are warped by one grid_sample: onnxruntime's GridSample spends much of its
            # time per sample point, so one call on C + 3 channels beats two (measured: 129 -> 91 ms per
            # neighbour for V=4 at 160x120; torch is unchanged).
            source = torch.cat([feats, images], dim=1)  # [V, C + 3, h, w]
        num_nbrs = nbrs.shape[1]
        for n in range(num_nbrs):  # static: k is fixed by V and the config
            j = nbrs[:, n]
            cw = cam_from_world.index_select(0, j)
            K_j = K.index_select(0, j)
            rot = torch.bmm(cw[:, :3, :3], rot_wc)  # ref cam -> neighbour cam
            trans = torch.bmm(cw[:, :3, :3], t_wc) + cw[:, :3, 3:]  # [V, 3, 1]
            pts = torch.bmm(rot, rays)[:, :, None, :] * depth + trans[:, :, :, None]  # [V, 3, D, hw]
            z = pts[:, 2]
            in_front = z > 1e-3
            # Points behind the camera sample outside the image (-2: zeros padding); their u, v use z floored
            # at 1e-3 (any positive value would do: they are replaced). Scalars, not full-size constant tensors.
            z = z.clamp(min=1e-3)
            u = K_j[:, 0, 0, None, None] * pts[:, 0] / z + K_j[:, 0, 2, None, None]
            v = K_j[:, 1, 1, None, None] * pts[:, 1] / z + K_j[:, 1, 2, None, None]
            gx = torch.where(in_front, 2.0 * u / width - 1.0, -2.0)
            gy = torch.where(in_front, 2.0 * v / height - 1.0, -2.0)
            grid = torch.stack([gx, gy], dim=-1).reshape(num_views, count * height, width, 2)
            src = source.index_select(0, j)
            warped = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            prod = (warped[:, :channels].reshape(num_views, channels, count, height, width) * ref).reshape(
                num_views, channels, count * height, width)
            corr = prod if group_mean is None else F.conv2d(prod, group_mean, groups=groups)  # [V, G, D*h, w]
            total = total + corr.reshape(num_views, groups, count, height, width)
            if images is not None:
                warped_rgb = warped[:, channels:]  # [V, 3, D*h, w]
                # a plain mean over the 4-D channel axis: ~10x faster than a 1x1 conv in torch and onnxruntime
                photo = photo + (warped_rgb - ref_rgb).abs().mean(dim=1, keepdim=True)
        total = total * (1.0 / num_nbrs)
        if images is None:
            return total
        photo = (photo * (1.0 / num_nbrs)).reshape(num_views, 1, count, height, width)
        return torch.cat([total, photo], dim=1)

    def forward(
        self,
        feats: list[Tensor],
        K: Float[Tensor, "V 3 3"],
        world_from_cam: Float[Tensor, "V 4 4"],
        cam_from_world: Float[Tensor, "V 4 4"],
        full_width: int,
        images: Optional[Tensor] = None,
    ) -> list[Float[Tensor, "V 1 h w"]]:
        """Depth per level, coarse (H/4) to fine (H), metres.

        Args:
            feats: encoder features at H/4, H/2, H.
            K: full-resolution intrinsics (pixels); scaled per level here.
            full_width: W of the full-resolution image (sets each level's scale).
            images: [V, 3, H, W] input images; needed (and used) only with `photometric_cost`.
        """
        if self.cfg.photometric_cost and images is None:
            raise ValueError("CascadeDepth: photometric_cost needs the input images")
        num_views = K.shape[0]
        k = min(self.cfg.depth_neighbors, num_views - 1)
        nbrs = nearest_views(world_from_cam, k)
        levels: list[Tensor] = []
        prev = None
        for level, (f, match, reg) in enumerate(zip(feats, self.match, self.regularize)):
            m = match(f)
            _, _, height, width = m.shape
            K_l = scale_intrinsics(K, width / full_width)
            planes = self.candidates(level, prev, (num_views, height, width))
            rgb = None
            if self.cfg.photometric_cost:  # the images at this level's size (box filter = anti-aliasing)
                factor = images.shape[-1] // width
                rgb = images if factor == 1 else F.avg_pool2d(images, factor)
            cost = self.cost_volume(m, K_l, world_from_cam, cam_from_world, planes, nbrs, rgb)
            prob = torch.softmax(reg(cost), dim=1)  # [V, D, h, w]
            prev = (prob * planes).sum(dim=1, keepdim=True)
            levels.append(prev)
        return levels
