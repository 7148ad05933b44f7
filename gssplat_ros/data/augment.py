"""Training-time augmentation of whole windows: a mirrored world and a colour jitter.

Usage:
    windows = AugmentedWindows(WindowDataset(...), Augmentation(flip_prob=0.5, color_jitter=0.2), seed=0)
    batch = windows[i]           # the same keys as WindowDataset's item, every view changed alike

A horizontal flip of every image is only multi-view consistent if the world is mirrored with it: each
camera's x axis flips (F = diag(-1, 1, 1)) and the world's x axis flips (M = diag(-1, 1, 1)), so
world_from_cam' = M world_from_cam F keeps a proper rotation, the principal point moves to W - cx (pixel
centres at +0.5), depth and labels flip with the pixels, and the world keeps z up with the floor at
z = 0 (the semantic branch's geometry cues stay valid). The colour jitter (brightness, contrast,
saturation, each scaled by a factor in [1 - s, 1 + s]) is drawn once per window, so the colour of a
surface still agrees between the context views and the rendered targets.

Random draws depend only on (seed, epoch, index): a window is augmented the same way in any worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))  # [4, 4] flips x, in the world or a camera frame


@dataclass
class Augmentation:
    flip_prob: float = 0.0  # chance of mirroring a window
    color_jitter: float = 0.0  # s: brightness, contrast and saturation factors in [1 - s, 1 + s]

    @property
    def enabled(self) -> bool:
        return self.flip_prob > 0 or self.color_jitter > 0


def mirror_window(batch: dict) -> dict:
    """The window seen in a world mirrored in x: images, depth and labels flipped left-right, K and poses
    changed to match (module docstring)."""
    out = dict(batch)
    for prefix in ("context", "target"):
        images = batch[f"{prefix}_images"]  # [N, 3, H, W]
        width = images.shape[-1]
        for key in ("images", "depth", "labels"):
            out[f"{prefix}_{key}"] = batch[f"{prefix}_{key}"].flip(-1)
        K = batch[f"{prefix}_K"].clone()  # [N, 3, 3]
        K[:, 0, 2] = width - K[:, 0, 2]
        out[f"{prefix}_K"] = K
        mirror = MIRROR_X.to(batch[f"{prefix}_world_from_cam"])
        out[f"{prefix}_world_from_cam"] = mirror @ batch[f"{prefix}_world_from_cam"] @ mirror  # [N, 4, 4]
    return out


def jitter_colors(batch: dict, brightness: float, contrast: float, saturation: float) -> dict:
    """Every image of the window with the same brightness / contrast / saturation factors, clamped to [0, 1]."""
    out = dict(batch)
    for key in ("context_images", "target_images"):
        x = batch[key] * brightness  # [N, 3, H, W]
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])  # [N, 1, H, W]
        out[key] = ((x - gray) * saturation + gray).clamp(0.0, 1.0)
    return out


def augment_window(batch: dict, aug: Augmentation, rng: np.random.Generator) -> dict:
    if aug.flip_prob > 0 and rng.random() < aug.flip_prob:
        batch = mirror_window(batch)
    if aug.color_jitter > 0:
        b, c, s = rng.uniform(1.0 - aug.color_jitter, 1.0 + aug.color_jitter, size=3)
        batch = jitter_colors(batch, float(b), float(c), float(s))
    return batch


class AugmentedWindows(Dataset):
    """A window dataset (WindowDataset, MixedWindows) whose items are augmented; for training only."""

    def __init__(self, windows: Dataset, aug: Augmentation, seed: int = 0):
        self.windows, self.aug, self.seed, self.epoch = windows, aug, int(seed), 0

    def __len__(self) -> int:
        return len(self.windows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.windows.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 4242])
        return augment_window(self.windows[index], self.aug, rng)

