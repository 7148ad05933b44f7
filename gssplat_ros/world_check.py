"""Is this camera pose plausible for the world the semantic model was trained in (z up, floor at floor_z_m)?

Usage:
    reason = check_world_convention(world_from_cam, floor_z_m=0.0)   # None, or why the pose looks wrong
    if reason: warn_throttled(reason)

The semantic branch learnt floors and walls in a z-up world whose floor is at `floor_z_m`; a world with
y up (many SLAM systems, Unity, glTF), a pose source in a body frame taken as the optical frame, or a
floor a metre off all cost accuracy without any error. A camera on a robot or in a hand looks roughly
level: its image-up axis (the optical -y) points up within a tilt bound, and it sits a plausible height
above the floor. The bounds are generous; the check flags conventions, not unusual mounts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class WorldCheckConfig:
    # Largest angle between the image's up (optical -y) and world +z; beyond it the world looks rotated.
    max_up_tilt_deg: float = 75.0
    min_height_m: float = -0.2  # camera height above the floor; a little below 0 tolerates odometry drift
    max_height_m: float = 3.0  # above this it is not an indoor robot's or hand-held camera


def up_tilt_deg(world_from_cam: np.ndarray) -> float:
    """Angle in degrees between the camera's image-up direction (optical -y) and world +z."""
    image_up = -np.asarray(world_from_cam, dtype=np.float64)[:3, 1]
    cos = float(np.clip(image_up[2] / max(np.linalg.norm(image_up), 1e-12), -1.0, 1.0))
    return math.degrees(math.acos(cos))


def check_world_convention(world_from_cam: np.ndarray, floor_z_m: float = 0.0,
                           config: Optional[WorldCheckConfig] = None) -> Optional[str]:
    """None when the pose fits a z-up world with the floor at `floor_z_m`, else a one-line reason.

    Args:
        world_from_cam: [4, 4] camera optical-frame pose in the world (OpenCV axes), metres.
        floor_z_m: world z of the floor the semantic model assumes (the node's `floor_z_m`).
        config: bounds; defaults to WorldCheckConfig().
    """
    cfg = config or WorldCheckConfig()
    T = np.asarray(world_from_cam, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        return "camera pose is not a finite 4x4 transform"
    tilt = up_tilt_deg(T)
    if tilt > cfg.max_up_tilt_deg:
        hint = " (the world looks y-up or the pose is of a body frame, not the optical frame)" if tilt > 80 else ""
        return (f"camera image-up is {tilt:.0f} deg from world +z (limit {cfg.max_up_tilt_deg:.0f}){hint}; "
                "the semantic model expects a z-up world")
    height = float(T[2, 3]) - floor_z_m
    if not cfg.min_height_m <= height <= cfg.max_height_m:
        return (f"camera is {height:.2f} m above the floor at z = {floor_z_m:.2f} m "
                f"(plausible {cfg.min_height_m:.1f} to {cfg.max_height_m:.1f} m); check floor_z_m or the world frame")
    return None
