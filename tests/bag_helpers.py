"""Tiny ScanNet-layout scenes for the bag tests (written by hand until gssplat_ros.data lands)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gssplat_ros.cameras import look_at

W, H = 32, 24
K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])


def scene_pose(i: int) -> np.ndarray:
    """Camera i on a small arc looking at the origin (moves > 5 cm per frame: every frame is a keyframe)."""
    angle = 0.3 * i
    eye = (2.0 * np.cos(angle), 2.0 * np.sin(angle), 0.5)
    return look_at(eye, (0.0, 0.0, 0.0)).double().numpy()


def make_scene(root: Path, frames: int = 5, seed: int = 0, jpg: bool = False, depth: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("color", "depth", "pose", "intrinsic", "label-filt"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    K4 = np.eye(4)
    K4[:3, :3] = K
    np.savetxt(root / "intrinsic" / "intrinsic_color.txt", K4)
    for i in range(frames):
        rgb = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "color" / (f"{i}.jpg" if jpg else f"{i}.png"))
        if depth:
            d = rng.integers(500, 4000, size=(H, W)).astype(np.uint16)
            d[0, 0] = 0  # an invalid pixel
            Image.fromarray(d).save(root / "depth" / f"{i}.png")
        np.savetxt(root / "pose" / f"{i}.txt", scene_pose(i))
        Image.fromarray(np.full((H, W), 1 + i % 3, np.uint8)).save(root / "label-filt" / f"{i}.png")
    return root


def make_replica_scene(root: Path, frames: int = 3, seed: int = 0) -> Path:
    """Semantic-NeRF's Replica layout: rgb/rgb_{i}.png, depth/depth_{i}.png (mm), semantic_class/, traj_w_c.txt."""
    rng = np.random.default_rng(seed)
    for sub in ("rgb", "depth", "semantic_class"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        Image.fromarray(rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)).save(root / "rgb" / f"rgb_{i}.png")
        Image.fromarray(rng.integers(500, 4000, size=(H, W)).astype(np.uint16)).save(root / "depth" / f"depth_{i}.png")
        Image.fromarray(np.full((H, W), 3, np.uint8)).save(root / "semantic_class" / f"semantic_class_{i}.png")
    np.savetxt(root / "traj_w_c.txt", np.stack([scene_pose(i).reshape(-1) for i in range(frames)]))
    return root
