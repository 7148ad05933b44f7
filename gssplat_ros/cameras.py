"""Pinhole cameras in OpenCV optical axes (x right, y down, z forward), batched.

Usage:
    cams = Cameras.from_json("camera.json")           # the CAMERA.json contract
    cams = Cameras(K=K, world_from_cam=T, width=320, height=240)   # K [V,3,3], T [V,4,4]
    cam_from_world = cams.cam_from_world               # rigid inverse, no matrix inverse op
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from gssplat_ros.errors import GssplatError


class CameraError(GssplatError, ValueError):
    """Raised for an invalid camera: bad intrinsics, non-rigid or non-finite pose, bad size."""


def rigid_inverse(world_from_cam: Tensor) -> Tensor:
    """Invert rigid 4x4 transforms [..., 4, 4] with R^T and -R^T t (exportable, no linalg.inv)."""
    rot = world_from_cam[..., :3, :3]
    trans = world_from_cam[..., :3, 3:]
    rot_t = rot.transpose(-1, -2)
    out = torch.zeros_like(world_from_cam)
    out[..., :3, :3] = rot_t
    out[..., :3, 3:] = -rot_t @ trans
    out[..., 3, 3] = 1.0
    return out


def translate_poses(world_from_cam: Tensor, offset: Tensor) -> Tensor:
    """[..., 4, 4] camera-to-world poses moved by `offset` [3] metres in the world (a new tensor)."""
    pose = world_from_cam.clone()
    pose[..., :3, 3] += offset.to(pose)
    return pose


def check_rigid(world_from_cam: Tensor, tol: float = 1e-3) -> None:
    """Raise CameraError unless every [4,4] is finite with an orthonormal, right-handed rotation."""
    if not torch.isfinite(world_from_cam).all():
        raise CameraError("camera pose has non-finite values")
    m = world_from_cam.double().reshape(-1, 4, 4)
    rot = m[:, :3, :3]
    eye = torch.eye(3, dtype=m.dtype, device=m.device)
    ortho_err = (rot @ rot.transpose(-1, -2) - eye).abs().amax().item()
    if ortho_err > tol:
        raise CameraError(f"camera pose rotation is not orthonormal (max |R R^T - I| = {ortho_err:.3g})")
    det = torch.linalg.det(rot)
    if (det < 0).any():
        raise CameraError("camera pose rotation is a reflection (det < 0)")
    bottom = m[:, 3, :] - torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=m.dtype, device=m.device)
    if bottom.abs().amax().item() > tol:
        raise CameraError("camera pose last row must be [0, 0, 0, 1]")


def check_intrinsics(K: Tensor, width: int, height: int) -> None:
    """Raise CameraError for non-finite or non-positive focal lengths or a non-positive size."""
    if width <= 0 or height <= 0:
        raise CameraError(f"image size must be positive, got {width}x{height}")
    if not torch.isfinite(K).all():
        raise CameraError("intrinsics have non-finite values")
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    if (fx <= 0).any() or (fy <= 0).any():
        raise CameraError("focal lengths fx, fy must be positive")


def make_K(fx: float, fy: float, cx: float, cy: float) -> Tensor:
    """[3, 3] pinhole intrinsics in pixels."""
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)


def scale_K(K: Tensor, sx: float, sy: float) -> Tensor:
    """Intrinsics [..., 3, 3] for an image resized by (sx, sy); pixel centres at +0.5 stay aligned."""
    out = K.clone()
    out[..., 0, 0] *= sx
    out[..., 0, 2] *= sx
    out[..., 1, 1] *= sy
    out[..., 1, 2] *= sy
    return out


@dataclass
class Cameras:
    """V pinhole cameras sharing one image size.

    Attributes:
        K: intrinsics in pixels, [V, 3, 3]. Pixel (u, v) has its centre at (u + 0.5, v + 0.5).
        world_from_cam: camera-to-world rigid transforms, [V, 4, 4], OpenCV optical axes.
        width, height: image size in pixels.
    """

    K: Tensor  # [V, 3, 3]
    world_from_cam: Tensor  # [V, 4, 4]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.K.dim() == 2:
            self.K = self.K[None]
        if self.world_from_cam.dim() == 2:
            self.world_from_cam = self.world_from_cam[None]
        if self.K.shape[-2:] != (3, 3) or self.world_from_cam.shape[-2:] != (4, 4):
            raise CameraError(
                f"Cameras need K [V,3,3] and world_from_cam [V,4,4], got {tuple(self.K.shape)} "
                f"and {tuple(self.world_from_cam.shape)}"
            )
        if self.K.shape[0] != self.world_from_cam.shape[0]:
            raise CameraError(
                f"Cameras: {self.K.shape[0]} intrinsics but {self.world_from_cam.shape[0]} poses"
            )
        self.width, self.height = int(self.width), int(self.height)

    def __len__(self) -> int:
        return self.K.shape[0]

    def __getitem__(self, index) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return Cameras(self.K[index], self.world_from_cam[index], self.width, self.height)

    @property
    def device(self) -> torch.device:
        return self.K.device

    @property
    def cam_from_world(self) -> Tensor:
        """World-to-camera transforms [V, 4, 4] (gsplat's `viewmats`)."""
        return rigid_inverse(self.world_from_cam)

    @property
    def centers(self) -> Tensor:
        """Camera centres in the world, [V, 3], metres."""
        return self.world_from_cam[:, :3, 3]

    def to(self, device=None, dtype=None) -> Cameras:
        return Cameras(
            self.K.to(device=device, dtype=dtype),
            self.world_from_cam.to(device=device, dtype=dtype),
            self.width,
            self.height,
        )

    def translated(self, offset: Tensor) -> Cameras:
        """The same cameras moved by `offset` [3] metres in the world (see Gaussians.translated)."""
        return Cameras(self.K, translate_poses(self.world_from_cam, offset), self.width, self.height)

    def resized(self, width: int, height: int) -> Cameras:
        """The same cameras for images resized to width x height."""
        K = scale_K(self.K, width / self.width, height / self.height)
        return Cameras(K, self.world_from_cam, width, height)

    @staticmethod
    def cat(parts: list[Cameras]) -> Cameras:
        sizes = {(c.width, c.height) for c in parts}
        if len(sizes) != 1:
            raise CameraError(f"Cameras.cat needs one image size, got {sorted(sizes)}")
        w, h = sizes.pop()
        return Cameras(
            torch.cat([c.K for c in parts]), torch.cat([c.world_from_cam for c in parts]), w, h
        )

    def validate(self) -> Cameras:
        """Raise CameraError for bad intrinsics or non-rigid poses; returns self for chaining."""
        check_intrinsics(self.K, self.width, self.height)
        check_rigid(self.world_from_cam)
        return self

    # ----------------------------------------------------------------- CAMERA.json
    def to_json_dict(self, index: int = 0) -> dict:
        K = self.K[index].tolist()
        return {
            "width": self.width,
            "height": self.height,
            "fx": K[0][0],
            "fy": K[1][1],
            "cx": K[0][2],
            "cy": K[1][2],
            "camera_to_world": self.world_from_cam[index].tolist(),
        }

    @staticmethod
    def from_json_dict(data: dict) -> Cameras:
        """Parse `{"width","height","fx","fy","cx","cy","camera_to_world": 4x4}`; validates it."""
        try:
            width, height = int(data["width"]), int(data["height"])
            fx, fy, cx, cy = (float(data[k]) for k in ("fx", "fy", "cx", "cy"))
            pose = torch.tensor(data["camera_to_world"], dtype=torch.float64)
        except KeyError as exc:
            raise CameraError(f"camera JSON is missing the field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise CameraError(f"camera JSON has a malformed value: {exc}") from None
        if pose.shape != (4, 4):
            raise CameraError(f"camera_to_world must be 4 rows of 4, got shape {tuple(pose.shape)}")
        if not all(math.isfinite(v) for v in (fx, fy, cx, cy)):
            raise CameraError("camera JSON intrinsics must be finite")
        cams = Cameras(make_K(fx, fy, cx, cy), pose.float(), width, height)
        check_intrinsics(cams.K, width, height)
        check_rigid(pose)
        return cams

    @staticmethod
    def from_json(path: Union[str, Path]) -> Cameras:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CameraError(f"camera file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise CameraError(f"camera file {path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise CameraError(f"camera file {path} must hold a JSON object")
        return Cameras.from_json_dict(data)

    def save_json(self, path: Union[str, Path], index: int = 0) -> None:
        Path(path).write_text(json.dumps(self.to_json_dict(index), indent=2))


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> Tensor:
    """world_from_cam [4, 4] for an OpenCV camera at `eye` looking at `target` (z forward, y down)."""
    eye_t = torch.as_tensor(eye, dtype=torch.float64)
    fwd = torch.as_tensor(target, dtype=torch.float64) - eye_t
    fwd = fwd / fwd.norm()
    up_t = torch.as_tensor(up, dtype=torch.float64)
    right = torch.linalg.cross(fwd, up_t)
    if right.norm() < 1e-8:  # looking along `up`: pick any perpendicular
        right = torch.linalg.cross(fwd, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    right = right / right.norm()
    down = torch.linalg.cross(fwd, right)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, fwd, eye_t
    return pose.float()
