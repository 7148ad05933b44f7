"""The GSsplat network (torch), its losses and checkpoint IO.

Usage:
    from gssplat_ros.model import GSsplatNet, ModelConfig, compute_losses, load_model
    net = GSsplatNet(ModelConfig.preset("tiny", depth_mode="sensor"))
    out = net(images, K, world_from_cam, cam_from_world, depth)     # per-pixel Gaussians, OUTPUT_NAMES
"""

from gssplat_ros.model.checkpoint import load_model, load_weights, save_checkpoint
from gssplat_ros.model.config import PRESET_NAMES, ModelConfig
from gssplat_ros.model.losses import LossConfig, RenderedTargets, compute_losses, group_depth_loss, render_targets
from gssplat_ros.model.network import GSsplatNet

__all__ = [
    "PRESET_NAMES",
    "GSsplatNet",
    "LossConfig",
    "ModelConfig",
    "RenderedTargets",
    "compute_losses",
    "group_depth_loss",
    "load_model",
    "load_weights",
    "render_targets",
    "save_checkpoint",
]
