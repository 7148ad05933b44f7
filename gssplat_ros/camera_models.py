"""Full ROS camera models (CameraInfo's K, D, R, P) turned into the pinhole images the model needs.

Usage:
    model = CameraModel.from_camera_info(msg)            # any object with CameraInfo's fields
    rect = rectifier_for(model)                           # cached per model: maps built once
    rgb_pinhole = rect.rectify_color(rgb)                 # [H, W, 3] -> [H, W, 3], bilinear
    depth_pinhole = rect.rectify_depth(depth_m)           # [H, W] -> [H, W], nearest (no mixed edges)
    K = rect.K                                            # [3, 3] intrinsics of the output images

Conventions follow image_proc's rectify node: a raw image is remapped through (K, D, R) to the pinhole
P[:, :3] (or K when P is all zero), at the CameraInfo's size. An image that is already rectified
(`rectified_input=True`, e.g. an `image_rect` topic) is used as is with P[:, :3] as its intrinsics. A model
whose D is all zero and R the identity needs no remap either. Supported `distortion_model`s:
plumb_bob (4 or 5 coefficients), rational_polynomial (8; OpenCV accepts up to 14) and equidistant
(fisheye, 4). OpenCV builds the maps; this module only picks the call and caches the result.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from gssplat_ros.errors import GssplatError

PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")
FISHEYE_MODELS = ("equidistant",)
# CameraInfo's coefficient counts per model (OpenCV's 4/5/8/12/14 for the pinhole ones).
COEFF_COUNTS = {"plumb_bob": (4, 5), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}


class CameraModelError(GssplatError, ValueError):
    """A CameraInfo that cannot be used; `reason` is the diagnostics key the node counts it under."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class CameraModel:
    """A CameraInfo's calibration as hashable tuples (the key of the rectification cache).

    K is [3, 3] row-major (pixels), D the distortion coefficients, R [3, 3] the rectifying rotation,
    P [3, 4] the projection of the rectified image; sizes in pixels.
    """

    width: int
    height: int
    K: tuple
    D: tuple = ()
    distortion_model: str = "plumb_bob"
    R: tuple = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    P: tuple = (0.0,) * 12

    @classmethod
    def from_camera_info(cls, msg) -> CameraModel:
        """sensor_msgs/CameraInfo (or anything with its fields: width, height, k, d, distortion_model, r, p)."""
        r = tuple(float(v) for v in msg.r)
        p = tuple(float(v) for v in msg.p)
        return cls(
            width=int(msg.width), height=int(msg.height), K=tuple(float(v) for v in msg.k),
            D=tuple(float(v) for v in msg.d), distortion_model=str(msg.distortion_model),
            R=r if any(r) else cls.R, P=p if len(p) == 12 else (0.0,) * 12,
        )

    @property
    def K_matrix(self) -> np.ndarray:
        return np.array(self.K, dtype=np.float64).reshape(3, 3)

    @property
    def P_matrix(self) -> np.ndarray:
        return np.array(self.P, dtype=np.float64).reshape(3, 4)

    @property
    def R_matrix(self) -> np.ndarray:
        return np.array(self.R, dtype=np.float64).reshape(3, 3)

    def validate(self) -> None:
        """Raise CameraModelError for a size, K, P or distortion model that cannot be used."""
        if self.width <= 0 or self.height <= 0:
            raise CameraModelError("bad_camera_info", f"camera_info size {self.width}x{self.height} is empty")
        if len(self.K) != 9 or len(self.R) != 9:
            raise CameraModelError("bad_camera_info", "camera_info K and R must have 9 values")
        for name, m in (("K", self.K_matrix), ("P", self.P_matrix)):
            if not np.isfinite(m).all():
                raise CameraModelError("bad_intrinsics", f"camera_info {name} has non-finite values")
        K = self.K_matrix
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraModelError("bad_intrinsics", "camera_info K must have fx, fy > 0")
        if self.has_distortion():
            counts = COEFF_COUNTS.get(self.distortion_model)
            if counts is None:
                raise CameraModelError(
                    "unknown_distortion_model",
                    f"distortion_model {self.distortion_model!r} is not supported "
                    f"(use one of {', '.join(COEFF_COUNTS)})",
                )
            if len(self.D) not in counts:
                raise CameraModelError(
                    "bad_distortion",
                    f"{self.distortion_model} needs {' or '.join(map(str, counts))} coefficients, got {len(self.D)}",
                )
            if not np.isfinite(self.D).all():
                raise CameraModelError("bad_distortion", "camera_info D has non-finite values")

    def has_distortion(self) -> bool:
        return any(v != 0.0 for v in self.D)

    def is_identity_rectification(self) -> bool:
        return np.allclose(self.R_matrix, np.eye(3))

    def pinhole_K(self) -> np.ndarray:
        """[3, 3] intrinsics of the rectified image: P[:, :3] when P is set, else K."""
        P = self.P_matrix
        if P[0, 0] > 0 and P[1, 1] > 0:
            return P[:, :3].copy()
        return self.K_matrix


class Rectifier:
    """Turns images of one camera model into pinhole images of the same size (maps built on creation)."""

    def __init__(self, model: CameraModel, rectified_input: bool = False):
        model.validate()
        self.model = model
        self.size = (model.width, model.height)
        self.needs_remap = not rectified_input and (model.has_distortion() or not model.is_identity_rectification())
        # Rectified input carries P's intrinsics; a raw image without distortion or rotation is already K's.
        self.K = model.pinhole_K() if (rectified_input or self.needs_remap) else model.K_matrix
        self.map_x = self.map_y = None
        if self.needs_remap:
            K, D, R = model.K_matrix, np.array(model.D, dtype=np.float64), model.R_matrix
            if model.distortion_model in FISHEYE_MODELS and model.has_distortion():
                self.map_x, self.map_y = cv2.fisheye.initUndistortRectifyMap(
                    K, D, R, self.K, self.size, cv2.CV_32FC1)
            else:
                self.map_x, self.map_y = cv2.initUndistortRectifyMap(K, D, R, self.K, self.size, cv2.CV_32FC1)

    def _check_size(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            raise CameraModelError(
                "size_mismatch",
                f"camera_info is {self.size[0]}x{self.size[1]} but the image is {image.shape[1]}x{image.shape[0]}",
            )

    def rectify_color(self, image: np.ndarray) -> np.ndarray:
        """[H, W] or [H, W, C] image (any dtype OpenCV remaps) -> the same shape in the pinhole camera."""
        self._check_size(image)
        if not self.needs_remap:
            return image
        return cv2.remap(image, self.map_x, self.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def rectify_depth(self, depth: np.ndarray) -> np.ndarray:
        """[H, W] float32 depth (0 = invalid) -> [H, W]; nearest neighbour so no depth mixes two surfaces."""
        self._check_size(depth)
        if not self.needs_remap:
            return depth
        return cv2.remap(depth, self.map_x, self.map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)


@functools.lru_cache(maxsize=16)
def rectifier_for(model: CameraModel, rectified_input: bool = False) -> Rectifier:
    """The Rectifier of `model`, built once per distinct calibration (CameraModel is the hash key)."""
    return Rectifier(model, rectified_input)
