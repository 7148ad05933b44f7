"""Write a ScanNet-layout (or Replica) scene to a rosbag2 bag (MCAP or sqlite3, bag version 8 so Humble reads it).

Usage:
    stats = write_scene_bag("scenes/scene_0000", "scene_bag", SceneBagConfig(rate_hz=10))

Scene layout (what `gssplat data generate` writes, and ScanNet's exported frames):
    SCENE/color/{i}.png|jpg   RGB
    SCENE/depth/{i}.png       uint16 millimetres, 0 = invalid (optional)
    SCENE/pose/{i}.txt        4x4 camera-to-world, OpenCV optical axes
    SCENE/intrinsic/intrinsic_color.txt   4x4 (top-left 3x3 is K for the colour images)

Topics (header stamps = bag times = start_s + k / rate_hz for the k-th valid frame):
    /camera/image_raw    sensor_msgs/Image rgb8           frame_id = frame_id
    /camera/camera_info  sensor_msgs/CameraInfo           frame_id = frame_id
    /camera/depth        sensor_msgs/Image 32FC1 m | 16UC1 mm (aligned to the colour image)
    /camera/pose         geometry_msgs/PoseStamped        frame_id = world_frame, camera optical frame in world
    /tf                  tf2_msgs/TFMessage               world_frame -> frame_id
"""

from __future__ import annotations

import functools
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from gssplat_ros.bags import msgs
from gssplat_ros.bags.mcap_check import bag_mcap_files, seal_mcap_crcs
from gssplat_ros.data import load_scene
from gssplat_ros.errors import DataError

log = logging.getLogger(__name__)

TOPIC_IMAGE = "/camera/image_raw"
TOPIC_CAMERA_INFO = "/camera/camera_info"
TOPIC_DEPTH = "/camera/depth"
TOPIC_POSE = "/camera/pose"
TOPIC_TF = "/tf"

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class SceneBagConfig:
    storage: str = "mcap"  # mcap | sqlite3
    rate_hz: float = 10.0  # frame rate of the stamps
    frame_id: str = "camera_optical"  # camera optical frame (OpenCV axes)
    world_frame: str = "map"
    depth_encoding: str = "32FC1"  # 32FC1 (metres, 0 invalid) | 16UC1 (millimetres, 0 invalid)
    size: Optional[tuple[int, int]] = None  # (W, H) to resize to (K scaled); None = the colour images' size
    start_s: float = 1000.0  # stamp of the first frame, seconds
    version: int = 8  # rosbag2 metadata version: 8 is read by Humble and Jazzy
    with_depth: bool = True
    with_tf: bool = True
    scene_format: str = "auto"  # scannet | replica | auto (replica is read through gssplat_ros.data.load_scene)


@dataclass
class SceneBagStats:
    frames: int = 0
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    first_stamp_ns: int = 0
    last_stamp_ns: int = 0


# ----------------------------------------------------------------- scene reading
def _load_matrix(path: Path, shape=(4, 4)) -> np.ndarray:
    try:
        m = np.loadtxt(path, dtype=np.float64)
    except OSError:
        raise DataError(f"missing file: {path}") from None
    except ValueError as exc:
        raise DataError(f"{path} is not a matrix of numbers: {exc}") from None
    if m.shape != shape:
        raise DataError(f"{path} must hold a {shape[0]}x{shape[1]} matrix, got shape {m.shape}")
    return m


def scene_frame_ids(scene: Path) -> list[int]:
    """Frame numbers of SCENE/color/{i}.png|jpg, ascending."""
    color = scene / "color"
    if not scene.is_dir():
        raise DataError(f"scene directory not found: {scene}")
    if not color.is_dir():
        raise DataError(f"{scene} is not a ScanNet-layout scene: no color/ directory")
    ids = sorted(int(p.stem) for p in color.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES and p.stem.isdigit())
    if not ids:
        raise DataError(f"{color} has no numbered .png/.jpg images")
    return ids


def _find_image(folder: Path, i: int) -> Optional[Path]:
    for suffix in _IMAGE_SUFFIXES:
        p = folder / f"{i}{suffix}"
        if p.exists():
            return p
    return None


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _read_depth_mm(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            d = np.asarray(im)
    except OSError as exc:
        raise DataError(f"cannot read depth {path}: {exc}") from None
    if d.ndim != 2:
        raise DataError(f"depth {path} must be a single-channel uint16 PNG (millimetres), got shape {d.shape}")
    return d.astype(np.uint16)


def _resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def _resize_nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize (keeps invalid zeros invalid), pixel centres aligned."""
    w, h = size
    src_h, src_w = depth.shape
    if (src_w, src_h) == size:
        return depth
    ys = np.minimum(((np.arange(h) + 0.5) * src_h / h).astype(int), src_h - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * src_w / w).astype(int), src_w - 1)
    return depth[ys[:, None], xs[None, :]]


# ----------------------------------------------------------------- writing
def _qos_reliable(depth: int):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    zero = QosTime(sec=0, nsec=0)  # 0 = the middleware default (infinite deadline / lifespan / lease)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


@functools.cache
def _sealing_writer_class():
    from rosbags.rosbag2 import Writer

    class SealingWriter(Writer):
        """A rosbags Writer whose MCAP files get their CRCs on close (rosbags writes none): a flipped bit
        in a bag we wrote is then found by any MCAP reader instead of read as data."""

        def close(self) -> None:
            super().close()
            for file in bag_mcap_files(self.path):
                seal_mcap_crcs(file)

    return SealingWriter


def open_writer(path: Path, storage: str, version: int = 8):
    """A rosbags rosbag2 Writer, opened; raises DataError for an existing path or a bad storage name.

    MCAP files are written with chunk, data and summary CRCs.
    """
    from rosbags.rosbag2 import StoragePlugin

    Writer = _sealing_writer_class()  # noqa: N806

    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise DataError(f"storage must be mcap or sqlite3, got {storage!r}")
    if path.exists():
        raise DataError(f"output bag already exists: {path} (remove it or pick another path)")
    writer = Writer(path, version=version, storage_plugin=plugins[storage])
    writer.open()
    return writer


def add_topic(writer, topic: str, msgtype: str, qos_depth: int = 10):
    """Register a topic; offered QoS is reliable + volatile (a reliable publisher reaches every subscriber)."""
    qos = [_qos_reliable(qos_depth)]
    return writer.add_connection(topic, msgtype, typestore=msgs.typestore(), offered_qos_profiles=qos)


@dataclass
class _SceneFrame:
    rgb: np.ndarray  # [H, W, 3] uint8
    depth_mm: Optional[np.ndarray]  # [H, W] uint16 millimetres, 0 invalid, aligned to rgb; None = no depth
    K: np.ndarray  # [3, 3] pixels for rgb's size
    world_from_cam: np.ndarray  # [4, 4]


def _scale_K(K: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    K = np.array(K, dtype=np.float64)
    K[0] *= dst[0] / src[0]
    K[1] *= dst[1] / src[1]
    K[2] = [0.0, 0.0, 1.0]
    return K


def _scannet_frames(scene: Path, cfg: SceneBagConfig, skipped: list[str], has_depth: bool):
    """Raw files, lossless at the native size: no labels needed, invalid poses skipped."""
    ids = scene_frame_ids(scene)
    K_native = _load_matrix(scene / "intrinsic" / "intrinsic_color.txt")[:3, :3]
    for i in ids:
        pose_path = scene / "pose" / f"{i}.txt"
        if not pose_path.exists():
            skipped.append(f"{i}: no pose file")
            continue
        world_from_cam = _load_matrix(pose_path)
        rot = world_from_cam[:3, :3]
        if not np.isfinite(world_from_cam).all() or np.abs(rot @ rot.T - np.eye(3)).max() > 1e-3:
            skipped.append(f"{i}: invalid pose")  # ScanNet marks lost tracking with -inf
            continue
        depth_mm = None
        if has_depth:
            dpath = _find_image(scene / "depth", i)
            if dpath is None:
                skipped.append(f"{i}: no depth image")
                continue
            depth_mm = _read_depth_mm(dpath)
        rgb = _read_rgb(_find_image(scene / "color", i))
        src = (rgb.shape[1], rgb.shape[0])
        size = cfg.size or src
        if depth_mm is not None:
            depth_mm = _resize_nearest(depth_mm, size)  # ScanNet depth is 640x480 under 1296x968 colour
        yield _SceneFrame(_resize_rgb(rgb, size), depth_mm, _scale_K(K_native, src, size), world_from_cam)


def _loader_frames(scene: Path, cfg: SceneBagConfig, fmt: str, has_depth: bool):
    """Any layout the data package reads (Replica's Semantic-NeRF layout), through its loader."""
    import torch

    sc = load_scene(scene, fmt, size=cfg.size)
    for i in range(len(sc)):
        f = sc.frame(i)
        rgb = (f.image.permute(1, 2, 0).clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).numpy()
        depth_mm = (f.depth.double() * 1000.0).round().clamp(0, 65535).numpy().astype(np.uint16) if has_depth else None
        yield _SceneFrame(rgb, depth_mm, f.K.double().numpy(), f.world_from_cam.double().numpy())


def scene_format(scene: Path, fmt: str = "auto") -> str:
    """scannet (color/) or replica (rgb/, traj_w_c.txt); raises DataError for neither."""
    if fmt != "auto":
        if fmt not in ("scannet", "replica"):
            raise DataError(f"scene format must be scannet, replica or auto, got {fmt!r}")
        return fmt
    if not scene.is_dir():
        raise DataError(f"scene directory not found: {scene}")
    if (scene / "color").is_dir():
        return "scannet"
    if (scene / "rgb").is_dir() or (scene / "traj_w_c.txt").exists():
        return "replica"
    raise DataError(f"{scene} is neither a ScanNet-layout (color/) nor a Replica-layout (rgb/, traj_w_c.txt) scene")


def write_scene_bag(scene_dir: str | Path, out_bag: str | Path, cfg: Optional[SceneBagConfig] = None) -> SceneBagStats:
    """Turn a ScanNet-layout (or Replica) scene into a rosbag2 bag; frames with an invalid pose are skipped.

    Raises:
        DataError: missing scene, intrinsics or images; existing output; bad options.
    """
    cfg = cfg or SceneBagConfig()
    scene, out = Path(scene_dir), Path(out_bag)
    if cfg.rate_hz <= 0:
        raise DataError(f"rate must be positive, got {cfg.rate_hz}")
    if cfg.depth_encoding not in ("32FC1", "16UC1"):
        raise DataError(f"depth encoding must be 32FC1 or 16UC1, got {cfg.depth_encoding!r}")
    fmt = scene_format(scene, cfg.scene_format)
    has_depth = cfg.with_depth and (scene / "depth").is_dir()
    if cfg.with_depth and not has_depth:
        log.warning("%s has no depth/ directory: writing no %s topic", scene, TOPIC_DEPTH)
    stats = SceneBagStats()
    if fmt == "scannet":
        frames = _scannet_frames(scene, cfg, stats.skipped, has_depth)
    else:
        frames = _loader_frames(scene, cfg, fmt, has_depth)
    next_frame = next(frames, None)  # bad intrinsics or images fail here, before the bag is created

    writer = open_writer(out, cfg.storage, cfg.version)
    try:
        conns = {
            TOPIC_IMAGE: add_topic(writer, TOPIC_IMAGE, msgs.IMAGE),
            TOPIC_CAMERA_INFO: add_topic(writer, TOPIC_CAMERA_INFO, msgs.CAMERA_INFO),
            TOPIC_POSE: add_topic(writer, TOPIC_POSE, msgs.POSE_STAMPED),
        }
        if has_depth:
            conns[TOPIC_DEPTH] = add_topic(writer, TOPIC_DEPTH, msgs.IMAGE)
        if cfg.with_tf:
            conns[TOPIC_TF] = add_topic(writer, TOPIC_TF, msgs.TF_MESSAGE, qos_depth=100)
        start_ns = int(round(cfg.start_s * 1e9))
        period_ns = 1e9 / cfg.rate_hz
        while next_frame is not None:
            f = next_frame
            h, w = f.rgb.shape[:2]
            stamp = start_ns + int(round(stats.frames * period_ns))
            out_msgs = [
                (TOPIC_CAMERA_INFO, msgs.camera_info_msg(f.K, w, h, stamp, cfg.frame_id)),
                (TOPIC_IMAGE, msgs.image_msg(f.rgb, stamp, cfg.frame_id, "rgb8")),
            ]
            if f.depth_mm is not None:
                depth = f.depth_mm if cfg.depth_encoding == "16UC1" else f.depth_mm.astype(np.float32) / 1000.0
                out_msgs.append((TOPIC_DEPTH, msgs.image_msg(depth, stamp, cfg.frame_id, cfg.depth_encoding)))
            out_msgs.append((TOPIC_POSE, msgs.pose_stamped_msg(f.world_from_cam, stamp, cfg.world_frame)))
            if cfg.with_tf:
                out_msgs.append((TOPIC_TF, msgs.tf_msg(f.world_from_cam, stamp, cfg.world_frame, cfg.frame_id)))
            for topic, msg in out_msgs:
                writer.write(conns[topic], stamp, msgs.serialize(msg))
                stats.counts[topic] = stats.counts.get(topic, 0) + 1
            stats.first_stamp_ns = stats.first_stamp_ns or stamp
            stats.last_stamp_ns = stamp
            stats.frames += 1
            next_frame = next(frames, None)
    finally:
        writer.close()
    for reason in stats.skipped[:5]:
        log.warning("skipped frame %s", reason)
    if stats.frames == 0:
        shutil.rmtree(out, ignore_errors=True)  # we created it; leave no empty bag behind
        raise DataError(f"no frame of {scene} could be written ({len(stats.skipped)} skipped: "
                        f"{stats.skipped[0] if stats.skipped else 'none'})")
    return stats
