"""Keyframe selection and the sliding window of the last V keyframes (ROS-free).

Usage:
    window = KeyframeWindow(size=4, width=160, height=120, min_translation_m=0.05, min_rotation_deg=5)
    if window.offer(frame):          # Frame at any resolution; resized to the model size here
        snapshot = window.snapshot() # immutable, safe to hand to a worker thread
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from gssplat_ros.cameras import Cameras, scale_K


class FrameError(ValueError):
    """A frame that must be dropped; `reason` is a short key for diagnostics counters."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Frame:
    """One synced input sample, already converted from ROS messages."""

    stamp_ns: int
    image: np.ndarray  # [H, W, 3] uint8 RGB
    K: np.ndarray  # [3, 3] pixels, for `image`'s size
    world_from_cam: np.ndarray  # [4, 4] camera optical frame -> world (OpenCV axes)
    depth: Optional[np.ndarray] = None  # [H, W] float32 metres; 0 or NaN = invalid


@dataclass(frozen=True)
class Keyframe:
    stamp_ns: int
    image: torch.Tensor  # [3, H, W] float32 in [0, 1], model size
    K: torch.Tensor  # [3, 3], model size
    world_from_cam: torch.Tensor  # [4, 4]
    depth: Optional[torch.Tensor]  # [1, H, W] metres, 0 = invalid


@dataclass(frozen=True)
class Window:
    """An immutable copy of the window's keyframes (oldest first)."""

    keyframes: tuple[Keyframe, ...]

    def __len__(self) -> int:
        return len(self.keyframes)

    @property
    def has_depth(self) -> bool:
        return all(k.depth is not None for k in self.keyframes)

    @property
    def latest(self) -> Keyframe:
        return self.keyframes[-1]

    def cameras(self) -> Cameras:
        _, h, w = self.keyframes[0].image.shape
        return Cameras(
            torch.stack([k.K for k in self.keyframes]),
            torch.stack([k.world_from_cam for k in self.keyframes]),
            w,
            h,
        )

    def images(self) -> torch.Tensor:
        return torch.stack([k.image for k in self.keyframes])  # [V, 3, H, W]

    def depths(self) -> Optional[torch.Tensor]:
        if not self.has_depth:
            return None
        return torch.stack([k.depth for k in self.keyframes])  # [V, 1, H, W]


@dataclass(frozen=True)
class FrameLimits:
    """What a usable frame looks like beyond its types: size, a sane pose, enough valid depth."""

    max_pixels: int = 4096 * 2160  # larger images are dropped (a 4K frame still passes)
    max_abs_position_m: float = 100_000.0  # a camera further from the world origin is a broken pose
    min_depth_m: float = 0.05  # depth outside [min_depth_m, max_depth_m] is invalid (0 / NaN / inf too)
    max_depth_m: float = 100.0
    min_valid_depth_fraction: float = 0.05  # less valid depth than this drops the frame (depth_invalid)


def valid_depth_mask(depth: np.ndarray, limits: FrameLimits) -> np.ndarray:
    """[H, W] bool: finite depth within [min_depth_m, max_depth_m]."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth >= limits.min_depth_m) & (depth <= limits.max_depth_m)


def validate_frame(frame: Frame, limits: FrameLimits | int) -> None:
    """Raise FrameError (with a diagnostics reason) for a frame the model cannot use.

    `limits` may be a bare pixel limit (the other checks at their defaults)."""
    if not isinstance(limits, FrameLimits):
        limits = FrameLimits(max_pixels=int(limits))
    max_pixels = limits.max_pixels
    img = frame.image
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise FrameError("bad_image", f"image must be [H, W, 3] uint8, got {img.shape} {img.dtype}")
    h, w = img.shape[:2]
    if h * w > max_pixels:
        raise FrameError("image_too_large", f"image {w}x{h} exceeds the {max_pixels}-pixel limit")
    K = np.asarray(frame.K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise FrameError("bad_intrinsics", "intrinsics must be finite with positive focal lengths")
    pose = np.asarray(frame.world_from_cam, dtype=np.float64)
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        raise FrameError("bad_pose", "pose must be a finite 4x4 matrix")
    rot = pose[:3, :3]
    if np.abs(rot @ rot.T - np.eye(3)).max() > 1e-3 or np.linalg.det(rot) < 0:
        raise FrameError("bad_pose", "pose rotation is not a proper rotation")
    if np.abs(pose[:3, 3]).max() > limits.max_abs_position_m:
        raise FrameError("bad_pose", f"camera position {pose[:3, 3].tolist()} is outside the "
                                     f"+-{limits.max_abs_position_m:g} m world box (max_abs_position_m)")
    if frame.depth is not None:
        if frame.depth.shape != (h, w):
            raise FrameError("depth_size_mismatch", f"depth {frame.depth.shape} does not match image {h}x{w}")
        valid = float(valid_depth_mask(frame.depth, limits).mean())
        if valid < limits.min_valid_depth_fraction:
            raise FrameError("depth_invalid", f"{valid:.1%} of the depth is valid (finite, within "
                                              f"[{limits.min_depth_m:g}, {limits.max_depth_m:g}] m); "
                                              f"min_valid_depth_fraction is {limits.min_valid_depth_fraction:g}")


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the relative rotation between two poses [4, 4], degrees."""
    rel = a[:3, :3].T @ b[:3, :3]
    cos = np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0)
    return math.degrees(math.acos(cos))


def resize_frame(frame: Frame, width: int, height: int, limits: Optional[FrameLimits] = None) -> Keyframe:
    """Resize image (area-averaged), depth (nearest, keeps invalid pixels invalid) and K to width x height.

    Depth outside the limits' range becomes 0 (invalid)."""
    h, w = frame.image.shape[:2]
    image = torch.from_numpy(np.ascontiguousarray(frame.image)).permute(2, 0, 1).float() / 255.0  # [3, h, w]
    if (w, h) != (width, height):
        image = F.interpolate(
            image[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False
        )[0]
    K = scale_K(torch.as_tensor(frame.K, dtype=torch.float32), width / w, height / h)
    depth = None
    if frame.depth is not None:
        depth_m = np.where(valid_depth_mask(frame.depth, limits or FrameLimits()), frame.depth, 0.0)
        d = torch.from_numpy(depth_m.astype(np.float32))
        d = d.clamp_min(0.0)[None, None]  # [1, 1, h, w]
        if (w, h) != (width, height):
            d = F.interpolate(d, size=(height, width), mode="nearest")
        depth = d[0]
    return Keyframe(
        stamp_ns=frame.stamp_ns,
        image=image.clamp(0.0, 1.0).contiguous(),
        K=K,
        world_from_cam=torch.as_tensor(frame.world_from_cam, dtype=torch.float32),
        depth=depth,
    )


class KeyframeWindow:
    """Keeps the last `size` keyframes; a frame becomes a keyframe when the camera moved enough."""

    def __init__(
        self,
        size: int = 4,
        width: int = 160,
        height: int = 120,
        min_translation_m: float = 0.05,
        min_rotation_deg: float = 5.0,
        max_pixels: int = 4096 * 2160,
        limits: Optional[FrameLimits] = None,
    ):
        """`limits` overrides `max_pixels` when given."""
        if size < 2:
            raise ValueError(f"window size must be >= 2, got {size}")
        if width % 4 or height % 4:  # the network works at H/4 (160x120 is a supported size)
            raise ValueError(f"model size must be divisible by 4, got {width}x{height}")
        self.size, self.width, self.height = size, width, height
        self.min_translation_m, self.min_rotation_deg = min_translation_m, min_rotation_deg
        self.limits = limits or FrameLimits(max_pixels=max_pixels)
        self.max_pixels = self.limits.max_pixels
        self._keyframes: deque[Keyframe] = deque(maxlen=size)
        self._last_pose: Optional[np.ndarray] = None
        self.last_stamp_ns: Optional[int] = None

    def __len__(self) -> int:
        return len(self._keyframes)

    def reset(self) -> None:
        self._keyframes.clear()
        self._last_pose = None
        self.last_stamp_ns = None

    def is_keyframe(self, world_from_cam: np.ndarray) -> bool:
        if self._last_pose is None:
            return True
        moved = np.linalg.norm(world_from_cam[:3, 3] - self._last_pose[:3, 3])
        turned = rotation_angle_deg(self._last_pose, world_from_cam)
        return moved >= self.min_translation_m or turned >= self.min_rotation_deg

    def offer(self, frame: Frame) -> bool:
        """Validate a frame and add it if it is a keyframe. Returns True when the window changed.

        Raises:
            FrameError: invalid frame, or a stamp not newer than the last one (`stale_stamp`).
        """
        validate_frame(frame, self.limits)
        if self.last_stamp_ns is not None and frame.stamp_ns <= self.last_stamp_ns:
            raise FrameError("stale_stamp", f"stamp {frame.stamp_ns} is not newer than {self.last_stamp_ns}")
        self.last_stamp_ns = frame.stamp_ns
        pose = np.asarray(frame.world_from_cam, dtype=np.float64)
        if not self.is_keyframe(pose):
            return False
        self._keyframes.append(resize_frame(frame, self.width, self.height, self.limits))
        self._last_pose = pose
        return True

    def ready(self) -> bool:
        return len(self._keyframes) >= 2

    def snapshot(self) -> Window:
        return Window(tuple(self._keyframes))
