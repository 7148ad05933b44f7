# ruff: noqa: F722  (jaxtyping shape strings)
"""Training losses of the released GSsplat code, with a group loss whose gate actually learns.

Usage:
    out = net(batch["context_images"], batch["context_K"], wfc, rigid_inverse(wfc), batch["context_depth"])
    renders = render_targets(Prediction.from_outputs(out), target_cameras)     # RenderedTargets
    total, terms = compute_losses(out, batch, renders, LossConfig())
    total.backward()

Terms (weights from LossConfig; the released values by default):
    semantic          weighted CE of the rendered semantic logits vs target_labels (wall/floor 0.8, ignore 20)
    context_semantic  the same CE on the semantic decoder's 2D logits of the context views
    rgb               10 * MSE of the rendered colour vs target_images (LPIPS omitted: no VGG weights here)
    group             0.2 * (colour + semantic) group depth loss, see `group_depth_loss`
    depth             estimated mode only: smooth-L1 of each cascade level vs the context depth, valid pixels
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from gssplat_ros.cameras import Cameras, rigid_inverse
from gssplat_ros.model.config import ModelConfig
from gssplat_ros.model.geometry import masked_avg_pool
from gssplat_ros.prediction import Prediction
from gssplat_ros.render import RenderSettings, colour_settings, render


@dataclass(frozen=True)
class LossConfig:
    rgb_weight: float = 10.0
    semantic_weight: float = 1.0
    context_semantic_weight: float = 1.0
    group_weight: float = 0.2
    depth_weight: float = 1.0
    depth_level_weights: tuple[float, ...] = (0.5, 1.0, 2.0)  # coarse -> fine (released: 2^(1-l), l=0 finest)
    depth_loss_beta_m: float = 1.0  # smooth-L1 beta of the level loss (released 1 m); small = closer to L1
    background_classes: tuple[int, ...] = (0, 1)  # wall, floor
    background_weight: float = 0.8
    class_weights: tuple[float, ...] = ()  # one CE weight per class; when set, replaces the background weighting
    ignore_index: int = 20
    group_depth_source: str = "batch"  # "batch": context_depth; "predicted": the depth the centres came from
    gate_prior_weight: float = 0.0  # optional cost of an open gate (mean sigmoid of the gate logits)
    group_near_m: float = 0.01  # projected points closer than this are not in the z-buffer
    group_membership_gradient: bool = False  # let (1 - gate) carry gradient in the group loss (see group_depth_loss)
    lovasz_weight: float = 0.0  # semantic2d stage: + this x the Lovasz-softmax loss of the Gaussians' logits, per image


class RenderedTargets(NamedTuple):
    rgb: Tensor  # [T, H, W, 3]
    logits: Tensor  # [T, H, W, C]
    depth: Tensor  # [T, H, W] expected depth of the colour Gaussians
    alpha: Tensor  # [T, H, W]


def render_targets(
    prediction: Prediction, cameras: Cameras, settings: Optional[RenderSettings] = None
) -> RenderedTargets:
    """Rasterise the colour set (RGB, depth, alpha; as its model renders it, render.colour_settings) and the
    semantic set (logits) into the targets."""
    settings = settings or RenderSettings()
    colour = colour_settings(settings, prediction.observed_colour)
    color = render(prediction.color, cameras, replace(colour, render_features=False))
    sem = render(prediction.semantic, cameras, replace(settings, render_features=True))
    return RenderedTargets(rgb=color.rgb, logits=sem.features, depth=color.depth, alpha=color.alpha)


# ------------------------------------------------------------------------------------------ pieces
def class_weights(num_classes: int, cfg: LossConfig, device=None) -> Tensor:
    """[C] CE weights: `cfg.class_weights` when given, else 1 with `background_weight` for the background classes."""
    if cfg.class_weights:
        if len(cfg.class_weights) != num_classes:
            raise ValueError(f"loss class_weights has {len(cfg.class_weights)} entries but the model predicts "
                             f"{num_classes} classes")
        if any(not w >= 0 for w in cfg.class_weights):
            raise ValueError(f"loss class_weights must be >= 0, got {list(cfg.class_weights)}")
        return torch.tensor(cfg.class_weights, dtype=torch.float32, device=device)
    w = torch.ones(num_classes, device=device)
    for c in cfg.background_classes:
        if 0 <= c < num_classes:
            w[c] = cfg.background_weight
    return w


def weighted_cross_entropy(
    logits: Float[Tensor, "N C"], labels: Tensor, cfg: LossConfig, what: str = "labels"
) -> Tensor:
    """Class-weighted CE averaged over non-ignored pixels (0 when every pixel is ignored, never NaN)."""
    num_classes = logits.shape[-1]
    labels = labels.reshape(-1).long()
    keep = labels != cfg.ignore_index
    if keep.any():
        bad = labels[keep]
        lo, hi = int(bad.min()), int(bad.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"{what}: label {hi if hi >= num_classes else lo} is outside 0..{num_classes - 1} "
                f"(ignore_index {cfg.ignore_index}); the model predicts {num_classes} classes"
            )
    weight = class_weights(num_classes, cfg, logits.device).to(logits.dtype)
    safe = torch.where(keep, labels, torch.zeros_like(labels))
    nll = F.cross_entropy(logits.reshape(-1, num_classes), safe, weight=weight, reduction="none")
    w = weight[safe] * keep.to(logits.dtype)
    return (nll * keep.to(logits.dtype)).sum() / w.sum().clamp(min=1e-6)


def _lovasz_gradient(fg_sorted: Tensor) -> Tensor:
    """[P] gradient of the Lovasz extension of the Jaccard loss at errors sorted in descending order."""
    total = fg_sorted.sum()
    intersection = total - fg_sorted.cumsum(0)
    union = total + (1.0 - fg_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def lovasz_softmax(logits: Float[Tensor, "N C"], labels: Tensor, ignore_index: int) -> Tensor:
    """Lovasz-softmax loss (Berman et al., CVPR 2018): a convex surrogate of 1 - IoU, averaged over the
    classes present in `labels` (ignored pixels left out; 0 when nothing is labelled). Ours: the
    segmentation packages that ship it (segmentation_models_pytorch) pull in a model zoo for 20 lines."""
    labels = labels.reshape(-1).long()
    keep = labels != ignore_index
    if not keep.any():
        return logits.sum() * 0.0
    probs = torch.softmax(logits[keep], dim=-1)  # [P, C]
    labels = labels[keep]
    losses = []
    for c in torch.unique(labels).tolist():
        fg = (labels == c).to(probs.dtype)
        errors, order = torch.sort((fg - probs[:, c]).abs(), descending=True)
        losses.append(torch.dot(errors, _lovasz_gradient(fg[order])))
    return torch.stack(losses).mean()


def group_depth_loss(
    means: Float[Tensor, "V H W 3"],
    gate: Float[Tensor, "V H W"],
    point_valid: Float[Tensor, "V H W"],
    K: Float[Tensor, "V 3 3"],
    cam_from_world: Float[Tensor, "V 4 4"],
    depth_ref: Float[Tensor, "V H W"],
    near_m: float = 0.01,
    detach_weight: bool = True,
) -> Tensor:
    """Group-based depth supervision of the non-offset Gaussians (gate < 0.5) of all context views.

    Every non-offset centre is projected into every context view; a z-buffer (scatter_reduce amin,
    no gradient) keeps the nearest centre per pixel; the winners' camera depth is compared with the
    view's depth by smooth-L1 and averaged. Gradients reach the centres: the depth they came from (when
    estimated), and, through the straight-through `gate * offset`, both the offsets and the gate logits,
    which learn whether opening the gate would make the centre more consistent with the views.

    With `detach_weight` (default) group membership (1 - gate) only selects terms. Letting it carry
    gradient rewards opening gates for its own sake (an open gate leaves the loss): overfitting one
    window for 150 steps, that drove every gate open and saturated (logits ~12, the group loss 0), while
    with membership detached about 80 % opened, with logits ~1 and the group loss still active.
    """
    num_views, height, width, _ = means.shape
    pts = means.reshape(-1, 3)  # [N, 3]
    member = (gate.detach() < 0.5).reshape(-1) & (point_valid.reshape(-1) > 0)  # non-offset group
    weight = (1.0 - gate).reshape(-1).detach() if detach_weight else (1.0 - gate).reshape(-1)
    rot, trans = cam_from_world[:, :3, :3], cam_from_world[:, :3, 3]
    cam = torch.matmul(pts[None], rot.transpose(1, 2)) + trans[:, None, :]  # [V, N, 3]
    z = cam[..., 2]
    z_safe = torch.where(z > near_m, z, torch.ones_like(z))
    u = K[:, None, 0, 0] * cam[..., 0] / z_safe + K[:, None, 0, 2]
    v = K[:, None, 1, 1] * cam[..., 1] / z_safe + K[:, None, 1, 2]
    ui, vi = torch.floor(u.detach()), torch.floor(v.detach())
    inside = (z.detach() > near_m) & (ui >= 0) & (ui < width) & (vi >= 0) & (vi < height) & member[None]
    pixels = num_views * height * width
    view = torch.arange(num_views, device=means.device)[:, None]
    lin = (view * height + vi.clamp(0, height - 1).long()) * width + ui.clamp(0, width - 1).long()
    lin = torch.where(inside, lin, torch.full_like(lin, pixels))  # the dummy slot collects the rest
    zbuf = torch.full((pixels + 1,), float("inf"), dtype=z.dtype, device=z.device)
    zbuf = zbuf.scatter_reduce(0, lin.reshape(-1), z.detach().reshape(-1), reduce="amin")
    target = torch.cat([depth_ref.reshape(-1), depth_ref.new_zeros(1)])[lin]
    winner = inside & (z.detach() <= zbuf[lin]) & (target > 0)
    if not winner.any():
        return (means.sum() + gate.sum()) * 0.0  # keeps the graph connected
    err = F.smooth_l1_loss(z[winner], target[winner], reduction="none")
    w = weight[None].expand_as(z)[winner]
    return (err * w).sum() / winner.sum()


def depth_level_loss(levels: list[Tensor], gt_depth: Float[Tensor, "V 1 H W"], cfg: LossConfig) -> Tensor:
    """Smooth-L1 of each cascade level vs the valid-pixel mean of the GT depth at that level's size."""
    total = gt_depth.new_zeros(())
    full_h = gt_depth.shape[-2]
    for level, pred in enumerate(levels):
        factor = full_h // pred.shape[-2]
        gt = gt_depth if factor == 1 else masked_avg_pool(gt_depth, factor)
        valid = gt > 0
        if valid.any():
            error = F.smooth_l1_loss(pred[valid], gt[valid], beta=cfg.depth_loss_beta_m)
            total = total + cfg.depth_level_weights[level] * error
    return total


def _as_loss_config(cfg: Union[LossConfig, ModelConfig, None]) -> LossConfig:
    return cfg if isinstance(cfg, LossConfig) else LossConfig()


def _unpack_renders(renders) -> RenderedTargets:
    if isinstance(renders, dict):
        return RenderedTargets(renders["rgb"], renders["logits"], renders.get("depth"), renders.get("alpha"))
    return RenderedTargets(*renders)


# ------------------------------------------------------------------------------------------ total
def compute_losses(
    outputs: dict, batch: dict, renders, cfg: Union[LossConfig, ModelConfig, None] = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total training loss and its (detached) terms for one window.

    Args:
        outputs: GSsplatNet output dict for the context views.
        batch: one unbatched window (context_* and target_* keys, see gssplat_ros.data.windows).
        renders: RenderedTargets (or a 4-tuple / dict rgb, logits, depth, alpha) of the T targets.
        cfg: LossConfig; a ModelConfig or None means the released defaults.

    Returns:
        (total, terms) with terms rgb_mse, rgb, semantic, context_semantic, group_color, group_semantic,
        group, depth (0 in sensor mode), gate_prior, total.
    """
    lcfg = _as_loss_config(cfg)
    r = _unpack_renders(renders)
    num_classes = r.logits.shape[-1]
    terms: dict[str, Tensor] = {}

    target_rgb = batch["target_images"].permute(0, 2, 3, 1).to(r.rgb.dtype)
    terms["rgb_mse"] = F.mse_loss(r.rgb, target_rgb)
    terms["rgb"] = lcfg.rgb_weight * terms["rgb_mse"]
    terms["semantic"] = lcfg.semantic_weight * weighted_cross_entropy(
        r.logits.reshape(-1, num_classes), batch["target_labels"], lcfg, "target_labels"
    )
    ctx_logits = outputs["context_logits"].permute(0, 2, 3, 1).reshape(-1, num_classes)
    terms["context_semantic"] = lcfg.context_semantic_weight * weighted_cross_entropy(
        ctx_logits, batch["context_labels"], lcfg, "context_labels"
    )

    ctx_K = batch["context_K"]
    cam_from_world = rigid_inverse(batch["context_world_from_cam"])
    if lcfg.group_depth_source == "predicted":
        depth_ref = outputs["depth"]
    else:
        depth_ref = batch["context_depth"][:, 0]
    for branch in ("color", "sem"):
        name = "group_color" if branch == "color" else "group_semantic"
        terms[name] = group_depth_loss(
            outputs[f"{branch}_means"],
            outputs[f"{branch}_gate"],
            outputs["valid"],
            ctx_K,
            cam_from_world,
            depth_ref,
            lcfg.group_near_m,
            detach_weight=not lcfg.group_membership_gradient,
        )
    terms["group"] = lcfg.group_weight * (terms["group_color"] + terms["group_semantic"])

    levels = outputs.get("depth_levels") or []
    zero = terms["rgb"].new_zeros(())
    terms["depth"] = lcfg.depth_weight * depth_level_loss(levels, batch["context_depth"], lcfg) if levels else zero
    if lcfg.gate_prior_weight > 0:
        gates = torch.cat([outputs["color_gate_logits"].reshape(-1), outputs["sem_gate_logits"].reshape(-1)])
        terms["gate_prior"] = lcfg.gate_prior_weight * torch.sigmoid(gates).mean()
    else:
        terms["gate_prior"] = zero

    total = terms["rgb"] + terms["semantic"] + terms["context_semantic"] + terms["group"]
    total = total + terms["depth"] + terms["gate_prior"]
    terms["total"] = total
    return total, {k: v.detach() for k, v in terms.items()}
