"""Scene loaders: ScanNet layout (as GSNeRF / S-Ray preprocess it) and Replica (Semantic-NeRF layout).

Usage:
    scene = load_scene("data/scannet/scene0000_00", "scannet", size=(320, 240))
    f = scene.frame(0)      # Frame: image [3,H,W] 0-1, depth [H,W] m (0 = invalid), labels [H,W] 0..20,
                            #        K [3,3] pixels for (W, H), world_from_cam [4,4] OpenCV axes
    scene.poses             # [F, 4, 4] camera-to-world

ScanNet layout: `color/{i}.jpg|png`, `depth/{i}.png` (uint16 mm), `label-filt/{i}.png` (uint16 raw ScanNet
ids, mapped raw -> NYU40 -> ScanNet-20 through the shipped `scannetv2-labels.combined.tsv`), `pose/{i}.txt`
(4x4 camera-to-world), `intrinsic/intrinsic_color.txt` (4x4, for the colour images' own size). Without that
file K defaults to ScanNet's usual colour intrinsics at 1296x968 (fx = fy = 1170.19, cx = 647.75,
cy = 483.75), which is what GSNeRF/S-Ray obtain when they scale `intrinsic_color.txt` to 320x240
(fx ~ 288.9). Depth and label images may have their own resolution (raw ScanNet depth is 640x480) as long
as the aspect ratio matches the colour images within 2 %.

Replica (Semantic-NeRF): `rgb/rgb_{i}.png`, `depth/depth_{i}.png` (uint16 millimetres, scale 1000 as in
Semantic-NeRF's loader), `semantic_class/semantic_class_{i}.png` (Replica class ids), `traj_w_c.txt` (one row
of 16 numbers per frame, camera-to-world, OpenCV axes as Semantic-NeRF's "opencv" ray convention).
Intrinsics: Semantic-NeRF's pinhole with hfov 90 deg, fx = fy = W / 2 / tan(45 deg); its cx = (W - 1) / 2
puts pixel centres at integers, which is cx = W / 2 in our convention (pixel centres at +0.5). Classes: Replica
ids -> ScanNet-20 by name (`labels.REPLICA_TO_SCANNET20`), or an explicit `label_map` / `label_map.json`.

Labels are optional: a scene without its label folder (`label-filt/`, `semantic_class/`), e.g. a real RGB-D
capture, loads with every pixel IGNORE_INDEX; a label folder with a file missing is still an error.

Pixel convention everywhere: pixel (u, v) has its centre at (u + 0.5, v + 0.5); resizing scales K per axis.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gssplat_ros.data.labels import (
    IGNORE_INDEX,
    load_label_map_json,
    map_scannet_raw,
    replica_to_class_lut,
)
from gssplat_ros.errors import DataError

log = logging.getLogger(__name__)

# ScanNet's typical colour-camera intrinsics, for 1296 x 968 images (used when intrinsic_color.txt is absent).
SCANNET_DEFAULT_K = np.array([[1170.187988, 0.0, 647.75], [0.0, 1170.187988, 483.75], [0.0, 0.0, 1.0]])
SCANNET_DEFAULT_SIZE = (1296, 968)
REPLICA_HFOV_DEG = 90.0
DEPTH_SCALE = 1000.0  # uint16 depth PNG units per metre (ScanNet and Semantic-NeRF's Replica)
ASPECT_TOLERANCE = 0.02
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

PathLike = Union[str, Path]


@dataclass
class Frame:
    """One posed RGB-D-semantic frame at the scene's loaded size."""

    image: Tensor  # [3, H, W] float32 RGB in [0, 1]
    depth: Tensor  # [H, W] float32 metres (z-depth), 0 = invalid
    labels: Tensor  # [H, W] int64 class ids 0..19, 20 = other / ignored
    K: Tensor  # [3, 3] float32 pixels for (W, H)
    world_from_cam: Tensor  # [4, 4] float32 camera-to-world, OpenCV optical axes


def unlabelled(rgb: np.ndarray) -> np.ndarray:
    """[h, w] all IGNORE_INDEX: the labels of a frame from a scene without a label folder."""
    return np.full(rgb.shape[:2], IGNORE_INDEX, np.int64)


# ------------------------------------------------------------------------------------------ image IO
def read_image(path: Path) -> np.ndarray:
    """Read any PIL-readable image as a numpy array (RGB uint8 for colour, native ints for 16-bit)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                return np.asarray(im, dtype=np.int64)
            if im.mode in ("L", "P"):
                return np.asarray(im).astype(np.int64) if im.mode == "P" else np.asarray(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DataError(f"missing file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(f"missing file: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _resize_image(rgb: np.ndarray, size: tuple[int, int]) -> Tensor:
    t = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1).div_(255.0)
    w, h = size
    if t.shape[1:] != (h, w):
        down = h < t.shape[1] or w < t.shape[2]
        t = F.interpolate(t[None], size=(h, w), mode="bilinear", align_corners=False, antialias=down)[0]
        t = t.clamp_(0.0, 1.0)
    return t


def _resize_nearest(a: Tensor, size: tuple[int, int]) -> Tensor:
    w, h = size
    if a.shape != (h, w):
        dtype = a.dtype
        a = F.interpolate(a[None, None].double(), size=(h, w), mode="nearest-exact")[0, 0].to(dtype)
    return a


def _check_aspect(path: Path, got: tuple[int, int], ref: tuple[int, int]) -> None:
    ra, rb = got[0] / got[1], ref[0] / ref[1]
    if abs(ra / rb - 1.0) > ASPECT_TOLERANCE:
        raise DataError(
            f"{path}: size {got[0]}x{got[1]} does not match the colour images ({ref[0]}x{ref[1]}): "
            "aspect ratios differ"
        )


def _numeric_files(folder: Path, prefix: str = "") -> dict[int, Path]:
    """{i: path} for files named `{prefix}{i}.{png,jpg}` in folder."""
    if not folder.is_dir():
        raise DataError(f"missing folder: {folder}")
    out: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.stem.startswith(prefix):
            continue
        try:
            out[int(p.stem[len(prefix):])] = p
        except ValueError:
            continue
    return out


def _check_pose(pose: np.ndarray, path: Path) -> None:
    if pose.shape != (4, 4):
        raise DataError(f"{path}: a pose must be 4x4, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise DataError(f"{path}: pose has non-finite values")
    rot = pose[:3, :3]
    if np.abs(rot @ rot.T - np.eye(3)).max() > 1e-2 or np.linalg.det(rot) < 0:
        raise DataError(f"{path}: pose rotation is not a rotation matrix")


# ------------------------------------------------------------------------------------------ scenes
class Scene:
    """A sequence of posed frames. Subclasses fill `frame_ids`, `poses` and `_K_native`."""

    format = "base"

    def __init__(self, path: PathLike, size: Optional[tuple[int, int]] = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(f"scene folder not found: {self.path}")
        self.name = self.path.name
        self._size = size
        self.frame_ids: list[int] = []
        self.poses = torch.zeros(0, 4, 4)  # [F, 4, 4] camera-to-world
        self.native_size: tuple[int, int] = (0, 0)
        self._K_native = np.eye(3)

    def __len__(self) -> int:
        return len(self.frame_ids)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, frames={len(self)}, size={self.size})"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of loaded frames."""
        return tuple(self._size) if self._size else self.native_size  # type: ignore[return-value]

    @property
    def K(self) -> Tensor:
        """[3, 3] intrinsics for `size` (all frames of a scene share them)."""
        w0, h0 = self.native_size
        w, h = self.size
        K = self._K_native.copy()
        K[0] *= w / w0
        K[1] *= h / h0
        K[2] = (0.0, 0.0, 1.0)
        return torch.from_numpy(K).float()

    def frame(self, i: int) -> Frame:
        if not -len(self) <= i < len(self):
            raise IndexError(f"{self.name}: frame {i} out of range (0..{len(self) - 1})")
        i = i % len(self)
        image, depth, labels = self._load(i)
        return Frame(image=image, depth=depth, labels=labels, K=self.K, world_from_cam=self.poses[i].clone())

    def _load(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        raise NotImplementedError

    def _finish(self, rgb_path: Path, rgb: np.ndarray, depth_path: Path, depth_raw: np.ndarray,
                label_path: Path, classes: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
        h0, w0 = rgb.shape[:2]
        if (w0, h0) != self.native_size:
            raise DataError(
                f"{rgb_path}: size {w0}x{h0} differs from the scene's other colour images "
                f"({self.native_size[0]}x{self.native_size[1]})"
            )
        for p, a in ((depth_path, depth_raw), (label_path, classes)):
            if a.ndim != 2:
                raise DataError(f"{p}: expected a single-channel image, got shape {a.shape}")
            _check_aspect(p, (a.shape[1], a.shape[0]), self.native_size)
        image = _resize_image(rgb, self.size)
        depth = torch.from_numpy(depth_raw.astype(np.float32) / DEPTH_SCALE)
        depth = _resize_nearest(depth, self.size)
        labels = _resize_nearest(torch.from_numpy(classes.astype(np.int64)), self.size)
        return image, depth, labels


class ScanNetScene(Scene):
    """ScanNet layout; see the module docstring."""

    format = "scannet"

    def __init__(self, path: PathLike, size: Optional[tuple[int, int]] = None, skip_invalid_poses: bool = False,
                 tsv: Optional[PathLike] = None):
        super().__init__(path, size)
        self.tsv = tsv
        colors = _numeric_files(self.path / "color")
        if not colors:
            raise DataError(f"{self.path / 'color'}: no colour images ({{i}}.png or {{i}}.jpg)")
        ids, poses = [], []
        for i in sorted(colors):
            pose_path = self.path / "pose" / f"{i}.txt"
            pose = self._read_pose(pose_path)
            if not np.isfinite(pose).all() and skip_invalid_poses:
                log.info("%s: skipping frame %d (non-finite pose)", self.name, i)
                continue
            _check_pose(pose, pose_path)
            ids.append(i)
            poses.append(pose)
        if not ids:
            raise DataError(f"{self.path}: no frame has a valid pose")
        self.frame_ids = ids
        self._colors = colors
        self.poses = torch.from_numpy(np.stack(poses)).float()
        self.native_size = image_size(colors[ids[0]])
        self._K_native = self._read_K()

    @staticmethod
    def _read_pose(path: Path) -> np.ndarray:
        try:
            m = np.loadtxt(path, dtype=np.float64)
        except FileNotFoundError:
            raise DataError(f"missing file: {path}") from None
        except ValueError as exc:
            raise DataError(f"{path}: not a 4x4 matrix of numbers ({exc})") from None
        if m.size != 16:
            raise DataError(f"{path}: a pose must be 4x4, got {m.size} numbers")
        return m.reshape(4, 4)

    def _read_K(self) -> np.ndarray:
        path = self.path / "intrinsic" / "intrinsic_color.txt"
        if not path.exists():
            log.info("%s: no %s; using ScanNet's default colour intrinsics", self.name, path.name)
            K = SCANNET_DEFAULT_K.copy()
            K[0] *= self.native_size[0] / SCANNET_DEFAULT_SIZE[0]
            K[1] *= self.native_size[1] / SCANNET_DEFAULT_SIZE[1]
            return K
        try:
            m = np.loadtxt(path, dtype=np.float64)
        except ValueError as exc:
            raise DataError(f"{path}: not a matrix of numbers ({exc})") from None
        if m.shape not in ((4, 4), (3, 3)) or not np.isfinite(m).all() or m[0, 0] <= 0 or m[1, 1] <= 0:
            raise DataError(f"{path}: expected a finite 4x4 (or 3x3) intrinsic matrix with fx, fy > 0")
        return m[:3, :3].copy()

    def _load(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        fid = self.frame_ids[i]
        rgb_path = self._colors[fid]
        depth_path = self.path / "depth" / f"{fid}.png"
        label_path = self.path / "label-filt" / f"{fid}.png"
        rgb = read_image(rgb_path)
        depth = read_image(depth_path)
        if not label_path.parent.is_dir():  # an RGB-D capture without labels: every pixel ignored
            return self._finish(rgb_path, rgb, depth_path, depth, label_path, unlabelled(rgb))
        raw = read_image(label_path)
        if raw.ndim != 2:
            raise DataError(f"{label_path}: expected a 16-bit single-channel label image, got shape {raw.shape}")
        return self._finish(rgb_path, rgb, depth_path, depth, label_path, map_scannet_raw(raw, self.tsv))


class ReplicaScene(Scene):
    """Replica in the Semantic-NeRF layout; see the module docstring."""

    format = "replica"

    def __init__(self, path: PathLike, size: Optional[tuple[int, int]] = None,
                 label_map: Optional[Mapping[int, int]] = None, hfov_deg: float = REPLICA_HFOV_DEG):
        super().__init__(path, size)
        rgbs = _numeric_files(self.path / "rgb", "rgb_")
        if not rgbs:
            raise DataError(f"{self.path / 'rgb'}: no images named rgb_{{i}}.png")
        traj_path = self.path / "traj_w_c.txt"
        try:
            traj = np.loadtxt(traj_path, dtype=np.float64, ndmin=2)
        except FileNotFoundError:
            raise DataError(f"missing file: {traj_path}") from None
        except ValueError as exc:
            raise DataError(f"{traj_path}: not rows of numbers ({exc})") from None
        if traj.shape[1] != 16:
            raise DataError(f"{traj_path}: each row must hold 16 numbers, got {traj.shape[1]}")
        ids = sorted(rgbs)
        if ids[-1] >= len(traj):
            raise DataError(f"{traj_path}: {len(traj)} poses but frames up to rgb_{ids[-1]}.png")
        poses = traj.reshape(-1, 4, 4)[ids]
        for i, pose in zip(ids, poses):
            try:
                _check_pose(pose, traj_path)
            except DataError as exc:
                raise DataError(f"{exc} (row {i})") from None
        self.frame_ids = ids
        self._rgbs = rgbs
        self.poses = torch.from_numpy(poses).float()
        self.native_size = image_size(rgbs[ids[0]])
        w0, h0 = self.native_size
        f = w0 / 2.0 / math.tan(math.radians(hfov_deg / 2.0))
        self._K_native = np.array([[f, 0.0, w0 / 2.0], [0.0, f, h0 / 2.0], [0.0, 0.0, 1.0]])
        if label_map is None:
            for candidate in (self.path / "label_map.json", self.path.parent / "label_map.json"):
                if candidate.exists():
                    label_map = load_label_map_json(candidate)
                    break
        self._lut = replica_to_class_lut(label_map)

    def _load(self, i: int) -> tuple[Tensor, Tensor, Tensor]:
        fid = self.frame_ids[i]
        rgb_path = self._rgbs[fid]
        depth_path = self.path / "depth" / f"depth_{fid}.png"
        label_path = self.path / "semantic_class" / f"semantic_class_{fid}.png"
        rgb = read_image(rgb_path)
        depth = read_image(depth_path)
        if not label_path.parent.is_dir():  # an RGB-D capture without labels: every pixel ignored
            return self._finish(rgb_path, rgb, depth_path, depth, label_path, unlabelled(rgb))
        raw = read_image(label_path)
        if raw.ndim != 2:
            raise DataError(f"{label_path}: expected a single-channel class image, got shape {raw.shape}")
        classes = self._lut[np.clip(raw.astype(np.int64), 0, len(self._lut) - 1)]
        return self._finish(rgb_path, rgb, depth_path, depth, label_path, classes)


def detect_format(path: PathLike) -> str:
    path = Path(path)
    if (path / "traj_w_c.txt").exists() or (path / "rgb").is_dir():
        return "replica"
    if (path / "color").is_dir():
        return "scannet"
    raise DataError(f"{path}: neither a ScanNet-layout (color/) nor a Replica-layout (rgb/, traj_w_c.txt) scene")


def load_scene(path: PathLike, format: str = "scannet", size: Optional[Sequence[int]] = None, **kwargs) -> Scene:
    """Open a scene folder; frames are decoded lazily by `scene.frame(i)`.

    Args:
        path: the scene folder.
        format: "scannet", "replica" or "auto".
        size: (W, H) of loaded frames; None keeps the colour images' size. K is scaled to it.
        **kwargs: ScanNet: `skip_invalid_poses` (drop frames with non-finite poses, as GSNeRF does,
            instead of raising), `tsv`; Replica: `label_map` ({replica id: class id}), `hfov_deg`.

    Raises:
        DataError: missing or malformed files (the message names the file).

    Example:
        >>> scene = load_scene("scenes/scene0000_00", size=(320, 240))  # doctest: +SKIP
        >>> scene.frame(0).labels.max() <= 20                             # doctest: +SKIP
    """
    if size is not None:
        size = (int(size[0]), int(size[1]))
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError(f"size must be positive (W, H), got {size}")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "scannet":
        return ScanNetScene(path, size, **kwargs)
    if fmt == "replica":
        return ReplicaScene(path, size, **kwargs)
    raise ValueError(f"unknown scene format {format!r} (scannet, replica or auto)")


__all__ = ["Frame", "Scene", "ScanNetScene", "ReplicaScene", "load_scene", "detect_format", "IGNORE_INDEX"]
