"""Write procedural scenes in the ScanNet layout (as GSNeRF / S-Ray preprocess it).

Usage:
    summary = generate_dataset(GenerateConfig(out="scenes", scenes=8, frames=60, width=320, height=240, seed=0))

Per scene `sceneNNNN_00/`: color/{i}.png (or .jpg), depth/{i}.png (uint16 mm, 0 = invalid), label-filt/{i}.png
(uint16 raw ScanNet ids), pose/{i}.txt (4x4 camera-to-world, OpenCV axes), intrinsic/intrinsic_color.txt and
intrinsic_depth.txt (4x4, for this image size), scene.json (seed, generator version, room, objects, classes).
Scene `index` depends only on (seed, index): any subset or `--jobs` gives the same bytes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from gssplat_ros.data import appearance as ap
from gssplat_ros.data.appearance import appearance_config
from gssplat_ros.data.labels import CLASS_NAMES, scannet_raw_to_class_lut
from gssplat_ros.data.procedural.trajectory import make_trajectory
from gssplat_ros.data.scene_writer import make_folders, write_frame, write_intrinsics, write_json

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1.0.0"
FOCAL_PER_WIDTH = 0.9  # fx = fy = 0.9 W: ScanNet's colour camera (1170 / 1296), ~58 deg horizontal FOV


@dataclass
class GenerateConfig:
    out: str
    scenes: int = 1
    frames: int = 60
    width: int = 320
    height: int = 240
    seed: int = 0
    jobs: int = 1
    image_format: str = "png"  # png (exact) or jpg (quality 95, like ScanNet's colour stream)
    start_index: int = 0  # first scene index (scene0000_00 + start_index)
    step_m: float = 0.07  # camera travel per frame along the path
    room_type: Optional[str] = None  # force one type; default cycles through all types every 6 scenes
    source: str = "procedural"  # procedural (this package) or meshes (data/meshes: triangle-mesh rooms)
    appearance: str = "none"  # appearance.APPEARANCE_PRESETS: none (exact), camera, full (+ photo textures)
    depth_sensor: Optional[str] = None  # exact | kinect | realsense; None = the preset's


def default_K(width: int, height: int) -> np.ndarray:
    f = FOCAL_PER_WIDTH * width
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def scene_name(index: int) -> str:
    return f"scene{index:04d}_00"


def room_type_for(seed: int, index: int) -> str:
    """Every block of 6 consecutive indices holds each room type once (order shuffled per block)."""
    # lazy: the room builder and ray caster compile numba kernels; importing the config needs neither
    from gssplat_ros.data.procedural.rooms import ROOM_TYPES

    order = np.random.default_rng([seed, index // len(ROOM_TYPES), 7919]).permutation(len(ROOM_TYPES))
    return ROOM_TYPES[int(order[index % len(ROOM_TYPES)])]


def build_scene(seed: int, index: int, frames: int, step_m: float = 0.07, room_type: Optional[str] = None):
    """(room, arrays, poses [F,4,4]) for scene `index`: deterministic in (seed, index, frames, step_m)."""
    # lazy: the room builder and ray caster compile numba kernels; importing the config needs neither
    from gssplat_ros.data.procedural.rooms import build_room

    rng = np.random.default_rng([seed, index])
    room = build_room(rng, room_type or room_type_for(seed, index))
    perm = rng.permutation(256)
    arrays = room.geo.arrays(np.array(room.lights), room.ambient, perm)
    poses = make_trajectory(np.random.default_rng([seed, index, 1]), room, frames, step_m)
    return room, arrays, poses


def generate_scene(out_root: Path, index: int, cfg: GenerateConfig) -> dict:
    """Render and write one scene; returns timing and class statistics."""
    if cfg.source == "meshes":
        # lazy: the mesh scenes need trimesh and numba, loaded only for source=meshes
        from gssplat_ros.data.meshes.generate import generate_scene as generate_mesh_scene

        return generate_mesh_scene(out_root, index, cfg)
    # lazy: the room builder and ray caster compile numba kernels; importing the config needs neither
    from gssplat_ros.data.procedural.raycast import camera_dirs, render_view

    t0 = time.perf_counter()
    room, arrays, poses = build_scene(cfg.seed, index, cfg.frames, cfg.step_m, cfg.room_type)
    name = scene_name(index)
    root = Path(out_root) / name
    make_folders(root)
    look_cfg = ap.appearance_config(cfg.appearance, cfg.depth_sensor)
    width, height, K = cfg.width, cfg.height, default_K(cfg.width, cfg.height)
    look_rng = np.random.default_rng([cfg.seed, index, 4])
    if look_cfg.random_camera:
        width, height, K = ap.random_camera(look_rng, cfg.width, cfg.height, look_cfg)
    look = ap.SceneLook.draw(look_rng, look_cfg)
    n_prims = len(arrays["raw_ids"])
    prim_texture = np.where(look_rng.random(n_prims) < look_cfg.photo_texture_prob,
                            look_rng.integers(0, len(ap.PHOTOS), n_prims), -1)
    prim_texture_scale = look_rng.uniform(0.2, 1.0, n_prims)
    write_intrinsics(root, K)
    dirs = camera_dirs(K, width, height)
    raw_of_prim = np.concatenate([arrays["raw_ids"], np.zeros(1, np.uint16)])  # index -1 (miss) -> 0
    lut = scannet_raw_to_class_lut()
    pixels = np.zeros(21, np.int64)
    render_s = 0.0
    for i, pose in enumerate(poses):
        t = time.perf_counter()
        rgb, depth, prim = render_view(arrays, pose, dirs)
        render_s += time.perf_counter() - t
        raw = raw_of_prim[prim]
        pixels += np.bincount(lut[np.minimum(raw, len(lut) - 1)].ravel(), minlength=21)
        if (prim_texture >= 0).any():
            rgb = ap.overlay_photo_textures(rgb, depth, pose, K, prim, prim_texture, prim_texture_scale)
        view_rng = np.random.default_rng([cfg.seed, index, 5, i])
        color = ap.camera_rgb(rgb, view_rng, look_cfg, look)
        depth = ap.depth_sensor(depth, rgb, view_rng, look_cfg.depth_sensor)
        write_frame(root, i, color, depth, raw, pose, cfg.image_format)
    objects = room.geo.object_summaries()
    classes = sorted({int(lut[o["raw_id"]]) for o in objects} - {20})
    meta = {
        "generator": "gssplat_ros.data.procedural",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "index": index,
        "frames": len(poses),
        "width": width,
        "height": height,
        "appearance": cfg.appearance,
        "depth_sensor": look_cfg.depth_sensor,
        "image_format": cfg.image_format,
        "step_m": cfg.step_m,
        "room_type": room.room_type,
        "room_size_m": [round(room.lx, 3), round(room.ly, 3), round(room.h, 3)],
        "lights": [[round(v, 3) for v in light] for light in room.lights],
        "classes": [CLASS_NAMES[c] for c in classes],
        "pixel_counts": {("other" if c == 20 else CLASS_NAMES[c]): int(n) for c, n in enumerate(pixels) if n},
        "objects": objects,
    }
    write_json(root / "scene.json", meta)
    return {"scene": name, "frames": len(poses), "render_s": render_s, "total_s": time.perf_counter() - t0,
            "classes": meta["classes"]}


def _worker(args) -> dict:
    out, index, cfg_dict, threads = args
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return generate_scene(Path(out), index, GenerateConfig(**cfg_dict))


def generate_dataset(cfg: GenerateConfig, progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Generate cfg.scenes scenes under cfg.out; returns totals and frames per second."""
    if cfg.width <= 0 or cfg.height <= 0 or cfg.frames <= 0 or cfg.scenes <= 0:
        raise ValueError("scenes, frames, width and height must be positive")
    if cfg.source not in ("procedural", "meshes"):
        raise ValueError(f"source must be procedural or meshes, got {cfg.source!r}")

    appearance_config(cfg.appearance, cfg.depth_sensor)  # unknown names fail before any work
    if cfg.image_format not in ("png", "jpg"):
        raise ValueError(f"image format must be png or jpg, got {cfg.image_format!r}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    indices = list(range(cfg.start_index, cfg.start_index + cfg.scenes))
    t0 = time.perf_counter()
    results = []
    jobs = max(1, min(cfg.jobs, len(indices)))
    if jobs == 1:
        for i in indices:
            results.append(generate_scene(out, i, cfg))
            if progress:
                progress(results[-1])
    else:
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // jobs)
        args = [(str(out), i, asdict(cfg), threads) for i in indices]
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
            for r in pool.map(_worker, args):
                results.append(r)
                if progress:
                    progress(r)
    wall = time.perf_counter() - t0
    frames = sum(r["frames"] for r in results)
    render = sum(r["render_s"] for r in results)
    return {
        "scenes": len(results),
        "frames": frames,
        "wall_s": wall,
        "frames_per_s": frames / wall if wall > 0 else float("inf"),
        "render_frames_per_s": frames / render if render > 0 else float("inf"),
        "classes": sorted({c for r in results for c in r["classes"]}),
    }
