"""Run the pipeline offline over a bag (no DDS) and write every output to a new bag.

Usage:
    pipe = Pipeline(PipelineConfig(window_size=4))
    stats = process_bag("scene_bag", "gssplat_out", pipe, ProcessConfig())

Output topics (header stamps copy the triggering input frame; render frame_id = the image's, cloud
frame_id = the pose's world frame):
    /gssplat/render/image           sensor_msgs/Image rgb8         every synced frame once a window is ready
    /gssplat/render/semantic        sensor_msgs/Image mono8        class ids, 255 = unlabeled
    /gssplat/render/semantic_color  sensor_msgs/Image rgb8         class palette
    /gssplat/render/depth           sensor_msgs/Image 32FC1        metres, NaN where empty
    /gssplat/render/camera_info     sensor_msgs/CameraInfo         intrinsics of the renders
    /gssplat/gaussians              sensor_msgs/PointCloud2        gssplat_ros.cloud_layout, each new prediction
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from gssplat_ros.bags import msgs
from gssplat_ros.bags.frames import FrameTopics, SyncStats, iter_frames, open_bag, resolve_topics
from gssplat_ros.bags.scene_bag import add_topic, open_writer
from gssplat_ros.cloud_layout import gaussians_to_cloud_array
from gssplat_ros.data import PALETTE  # type: ignore[attr-defined]
from gssplat_ros.window import FrameError

log = logging.getLogger(__name__)

RENDER_IMAGE = "render/image"
RENDER_SEMANTIC = "render/semantic"
RENDER_SEMANTIC_COLOR = "render/semantic_color"
RENDER_DEPTH = "render/depth"
RENDER_CAMERA_INFO = "render/camera_info"
GAUSSIANS = "gaussians"
OUTPUT_TYPES = {
    RENDER_IMAGE: msgs.IMAGE,
    RENDER_SEMANTIC: msgs.IMAGE,
    RENDER_SEMANTIC_COLOR: msgs.IMAGE,
    RENDER_DEPTH: msgs.IMAGE,
    RENDER_CAMERA_INFO: msgs.CAMERA_INFO,
    GAUSSIANS: msgs.POINT_CLOUD2,
}


@dataclass
class ProcessConfig:
    topics: FrameTopics = field(default_factory=FrameTopics)
    slop_s: float = 0.02  # pose/depth are matched to an image within this many seconds (exact stamps always match)
    render_size: Optional[tuple[int, int]] = None  # (W, H) of the renders; None = each input image's size
    storage: str = "mcap"  # mcap | sqlite3
    prefix: str = "/gssplat"  # output topic namespace
    render: bool = True  # False = only clouds


@dataclass
class ProcessStats:
    sync: SyncStats = field(default_factory=SyncStats)
    keyframes: int = 0
    predictions: int = 0
    renders: int = 0
    resets: int = 0
    frame_errors: Counter = field(default_factory=Counter)  # FrameError reason -> count
    counts: dict[str, int] = field(default_factory=dict)  # output topic -> messages
    predict_ms: list[float] = field(default_factory=list)
    render_ms: list[float] = field(default_factory=list)

    def summary(self) -> str:
        dropped = dict(self.sync.dropped) | dict(self.frame_errors)
        mean = lambda xs: f"{np.mean(xs):.0f} ms" if xs else "-"  # noqa: E731
        return (f"{self.sync.images} images, {self.sync.frames} synced, {self.keyframes} keyframes, "
                f"{self.predictions} predictions (mean {mean(self.predict_ms)}), {self.renders} renders "
                f"(mean {mean(self.render_ms)}), dropped {dropped or 'none'}")


def _palette() -> np.ndarray:
    """[256, 3] uint8 class colours; 255 (unlabeled) is black. The data package's palette when it has one."""
    try:
        pal = np.zeros((256, 3), np.uint8)
        src = np.asarray(PALETTE, dtype=np.uint8).reshape(-1, 3)[:255]
        pal[: len(src)] = src
    except (ImportError, ValueError):
        rng = np.random.default_rng(0)
        pal = rng.integers(40, 256, size=(256, 3), dtype=np.uint8)
    pal[255] = 0
    return pal


def _scaled_K(K: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> np.ndarray:
    K = np.array(K, dtype=np.float64)
    K[0] *= dst[0] / src[0]
    K[1] *= dst[1] / src[1]
    K[2] = [0.0, 0.0, 1.0]
    return K


def process_bag(in_bag: str | Path, out_bag: str | Path, pipeline, cfg: Optional[ProcessConfig] = None) -> ProcessStats:
    """Feed a bag's synced frames through `pipeline` (a gssplat_ros.pipeline.Pipeline) and record its outputs.

    Raises:
        DataError: missing bag, missing topics, existing output bag.
    """
    cfg = cfg or ProcessConfig()
    stats = ProcessStats()
    palette = _palette()
    reader = open_bag(in_bag)
    try:
        topics = resolve_topics(reader, cfg.topics, depth=getattr(pipeline.cfg, "depth_mode", "auto"))
        writer = open_writer(Path(out_bag), cfg.storage)
        try:
            prefix = cfg.prefix.rstrip("/")
            conns = {name: add_topic(writer, f"{prefix}/{name}", t, qos_depth=5) for name, t in OUTPUT_TYPES.items()}
            try:
                writer.set_custom_data("gssplat.class_names", ",".join(pipeline.class_names))
            except Exception:  # noqa: BLE001 - names are informative only
                pass

            def write(name: str, stamp: int, msg) -> None:
                writer.write(conns[name], stamp, msgs.serialize(msg))
                topic = f"{prefix}/{name}"
                stats.counts[topic] = stats.counts.get(topic, 0) + 1

            _run(reader, topics, pipeline, cfg, stats, palette, write)
        finally:
            writer.close()
    finally:
        reader.close()
    return stats


def _run(reader, topics, pipeline, cfg, stats, palette, write) -> None:
    prediction = None
    last_stamp: Optional[int] = None
    slop_ns = int(round(cfg.slop_s * 1e9))
    for item in iter_frames(reader, topics, slop_ns=slop_ns, stats=stats.sync):
        frame = item.frame
        stamp = frame.stamp_ns
        if last_stamp is not None and stamp <= last_stamp:
            log.warning("time jumped back (%d -> %d): resetting the window", last_stamp, stamp)
            pipeline.reset()
            prediction = None
            stats.resets += 1
        last_stamp = stamp
        try:
            is_keyframe = pipeline.add_frame(frame)
        except ValueError as exc:  # FrameError (a ValueError) carries a reason key
            stats.frame_errors[getattr(exc, "reason", "bad_frame")] += 1
            continue
        stats.keyframes += int(is_keyframe)
        if is_keyframe and pipeline.window_ready():
            t0 = time.perf_counter()
            try:
                prediction = pipeline.predict(pipeline.snapshot())
            except FrameError as exc:
                stats.frame_errors[exc.reason] += 1
                continue
            stats.predict_ms.append((time.perf_counter() - t0) * 1e3)
            stats.predictions += 1
            cloud = gaussians_to_cloud_array(pipeline.cloud(prediction), min_opacity=0.0)  # cloud() already filtered
            write(GAUSSIANS, stamp, msgs.point_cloud2_msg(cloud, stamp, item.world_frame_id))
        if prediction is None or not cfg.render:
            continue
        h0, w0 = frame.image.shape[:2]
        w, h = cfg.render_size or (w0, h0)
        K = _scaled_K(frame.K, (w0, h0), (w, h))
        t0 = time.perf_counter()
        out = pipeline.render(prediction, K, frame.world_from_cam, w, h)
        stats.render_ms.append((time.perf_counter() - t0) * 1e3)
        stats.renders += 1
        cam = item.camera_frame_id
        write(RENDER_IMAGE, stamp, msgs.image_msg(out.rgb, stamp, cam, "rgb8"))
        write(RENDER_SEMANTIC, stamp, msgs.image_msg(out.labels.astype(np.uint8), stamp, cam, "mono8"))
        write(RENDER_SEMANTIC_COLOR, stamp, msgs.image_msg(palette[out.labels], stamp, cam, "rgb8"))
        write(RENDER_DEPTH, stamp, msgs.image_msg(out.depth.astype(np.float32), stamp, cam, "32FC1"))
        write(RENDER_CAMERA_INFO, stamp, msgs.camera_info_msg(K, w, h, stamp, cam))
        if stats.renders % 50 == 0:
            log.info("processed %d frames: %s", stats.sync.frames, stats.summary())
