"""Render mesh rooms into the ScanNet layout that `data/scenes.py` loads (same files as `data/procedural`).

Usage:
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset
    generate_dataset(GenerateConfig(out="meshes8", scenes=8, width=160, height=120, source="meshes"))

Shading: albedo (plain, or a photo texture mapped by world position) times ambient plus Lambert from
point lights with shadow rays, falling off with distance. View-independent, so a surface point has one
colour in every view before the camera model (`data/appearance.py`) is applied.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from gssplat_ros.data import appearance as ap
from gssplat_ros.data.labels import CLASS_NAMES, scannet_raw_id, scannet_raw_to_class_lut
from gssplat_ros.data.meshes.bvh import build_bvh, cast, visible
from gssplat_ros.data.meshes.rooms import GRID_M, ROOM_TYPES, MeshRoom, build_room
from gssplat_ros.data.scene_writer import make_folders, write_frame, write_intrinsics, write_json

GENERATOR_VERSION = "1.0.0"
CLEARANCE_M = 0.35  # camera path distance from walls and furniture
HEIGHT_RANGE_M = (1.1, 1.7)


# ------------------------------------------------------------------------------------------ geometry arrays
def room_arrays(room: MeshRoom) -> dict:
    """Flatten the room's parts: triangles [T, 3, 3], per-triangle material and raw label, material tables."""

    tris, mat_of, raw_of, mats = [], [], [], []
    for k, p in enumerate(room.parts):
        tris.append(p.mesh.vertices[p.mesh.faces])
        mat_of.append(np.full(len(p.mesh.faces), k))
        raw_of.append(np.full(len(p.mesh.faces), scannet_raw_id(p.raw)))
        mats.append(p.material)
    tri = np.concatenate(tris)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return {
        "tri": tri,
        "normal": n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12),
        "mat": np.concatenate(mat_of),
        "raw": np.concatenate(raw_of).astype(np.uint16),
        "color": np.array([m.color for m in mats], np.float32),
        "texture": np.array([m.texture for m in mats], np.int64),
        "scale": np.array([m.texture_scale_m for m in mats]),
        "strength": np.array([m.texture_strength for m in mats], np.float32),
        "shiny": np.array([m.shiny for m in mats]),
    }


def render_view(room: MeshRoom, arrays: dict, bvh, world_from_cam: np.ndarray, K: np.ndarray, width: int,
                height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """rgb [H, W, 3] float32 0-1, z-depth [H, W] metres (0 = miss), raw ScanNet id [H, W] uint16 (0 = miss),
    shiny [H, W] bool."""
    u = (np.arange(width) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(height) + 0.5 - K[1, 2]) / K[1, 1]
    d_cam = np.stack([np.broadcast_to(u[None], (height, width)), np.broadcast_to(v[:, None], (height, width)),
                      np.ones((height, width))], -1).reshape(-1, 3)  # z = 1, so t is z-depth
    dirs = d_cam @ world_from_cam[:3, :3].T
    origin = world_from_cam[:3, 3]
    t, tri = cast(bvh, origin, dirs)
    hit = tri >= 0
    rgb = np.zeros((len(dirs), 3), np.float32)
    depth = np.where(hit, t, 0.0)
    raw = np.zeros(len(dirs), np.uint16)
    shiny = np.zeros(len(dirs), bool)
    if hit.any():
        ti = tri[hit]
        pts = origin + t[hit, None] * dirs[hit]
        n = arrays["normal"][ti]
        n = np.where((np.einsum("ij,ij->i", n, dirs[hit]) > 0)[:, None], -n, n)  # face the camera
        m = arrays["mat"][ti]
        albedo = arrays["color"][m]  # [N, 3] (fancy indexing copies)
        tex = arrays["texture"][m]
        has = tex >= 0
        if has.any():
            sample = ap.triplanar(ap.photo_textures(), tex[has], pts[has], n[has], arrays["scale"][m[has]])
            albedo[has] = np.clip(albedo[has] * ap.texture_detail(sample, tex[has], arrays["strength"][m[has]]), 0, 1)
        light = np.full(len(pts), room.ambient)
        power = 1.4 / math.sqrt(len(room.lights))
        for lp in room.lights:
            L = lp - pts
            dist = np.linalg.norm(L, axis=1)
            ndl = np.maximum(np.einsum("ij,ij->i", n, L) / np.maximum(dist, 1e-9), 0.0)
            lit = ndl > 0
            vis = np.zeros(len(pts), bool)
            if lit.any():
                vis[lit] = visible(bvh, pts[lit] + 1e-4 * n[lit], lp)
            light += power * ndl * vis / (1.0 + 0.12 * dist**2)
        rgb[hit] = np.clip(albedo * light[:, None], 0.0, 1.0)
        raw[hit] = arrays["raw"][ti]
        shiny[hit] = arrays["shiny"][m]
    return (rgb.reshape(height, width, 3), depth.reshape(height, width).astype(np.float32),
            raw.reshape(height, width), shiny.reshape(height, width))


# ------------------------------------------------------------------------------------------ camera path
def camera_path(rng, room: MeshRoom, frames: int, step_m: float) -> np.ndarray:
    """[F, 4, 4] camera-to-world (OpenCV axes): a spline through free floor, aimed at furniture."""
    from scipy.ndimage import distance_transform_edt

    clear = distance_transform_edt(room.free) * GRID_M >= CLEARANCE_M
    if not clear.any():
        clear = distance_transform_edt(room.free) * GRID_M >= 0.15
    cells = np.argwhere(clear)
    xy = cells * GRID_M + room.grid_lo + GRID_M / 2  # [C, 2] room frame

    def seg_clear(a, b) -> bool:
        for s in np.linspace(0, 1, max(2, int(np.linalg.norm(b - a) / GRID_M) + 1)):
            g = np.floor((a + (b - a) * s - room.grid_lo) / GRID_M).astype(int)
            if not (0 <= g[0] < clear.shape[0] and 0 <= g[1] < clear.shape[1] and clear[g[0], g[1]]):
                return False
        return True

    need = frames * step_m + 0.5
    pts = [xy[rng.integers(len(xy))]]
    length, tries = 0.0, 0
    while (length < need or len(pts) < 3) and tries < 400:
        tries += 1
        cand = xy[rng.integers(len(xy))]
        dist = np.linalg.norm(cand - pts[-1])
        if 0.6 <= dist <= 2.2 and seg_clear(pts[-1], cand):
            pts.append(cand)
            length += dist
    if length == 0.0:  # nothing 0.6-2.2 m away is reachable: step to the nearest clear cell at least 0.2 m away
        d = np.linalg.norm(xy - pts[0], axis=1)
        far_enough = np.flatnonzero(d >= 0.2)
        if len(far_enough) == 0:
            raise ValueError("the room has no free floor for a camera path")
        j = far_enough[np.argmin(d[far_enough])]
        pts.append(xy[j])
        length = float(d[j])
    if length < need:  # small or crowded room: go back and forth along what was found
        while length < need:
            pts = pts + pts[-2::-1]
            length *= 2
    P = np.array(pts)
    # chord-length parameter, dense polyline, resampled at step_m
    dense = np.concatenate([np.linspace(a, b, 20, endpoint=False) for a, b in zip(P[:-1], P[1:])] + [P[-1:]])
    widx = np.concatenate([np.linspace(k, k + 1, 20, endpoint=False) for k in range(len(P) - 1)] + [[len(P) - 1]])
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    # smooth the polyline's corners with a moving average (keeps it inside the clear area near the corners)
    k = 9
    pad = np.concatenate([np.repeat(dense[:1], k, 0), dense, np.repeat(dense[-1:], k, 0)])
    smooth = np.stack([np.convolve(pad[:, c], np.ones(2 * k + 1) / (2 * k + 1), "valid") for c in range(2)], 1)
    ss = np.arange(frames) * step_m
    pos = np.stack([np.interp(ss, s, smooth[:, c]) for c in range(2)], 1)
    w = np.interp(ss, s, widx)
    heights = rng.uniform(*HEIGHT_RANGE_M, len(P))
    z = np.interp(w, np.arange(len(P)), heights)
    room_from_world = np.linalg.inv(room.world_from_room)
    targets_item = [room_from_world[:3, :3] @ it["centre"] + room_from_world[:3, 3] for it in room.items]
    targets = []
    for p in P:
        cands = [c for c, it in zip(targets_item, room.items) if np.linalg.norm(c[:2] - p) > 1.0]
        if cands and rng.random() < 0.8:
            c = cands[int(rng.integers(len(cands)))][:2]
            targets.append([c[0], c[1], rng.uniform(0.3, 1.1)])
        else:
            far = xy[np.argsort(-np.linalg.norm(xy - p, axis=1))[: max(1, len(xy) // 5)]]
            c = far[rng.integers(len(far))]
            targets.append([c[0], c[1], rng.uniform(0.6, 1.4)])
    T = np.array(targets)
    tgt = np.stack([np.interp(w, np.arange(len(P)), T[:, c]) for c in range(3)], 1)
    poses = np.zeros((frames, 4, 4))
    up = np.array([0.0, 0.0, 1.0])
    roll = np.interp(w, np.arange(len(P)), rng.normal(0, 0.03, len(P)))
    for i in range(frames):
        c = np.array([pos[i, 0], pos[i, 1], z[i]])
        f = tgt[i] - c
        if np.linalg.norm(f[:2]) < 0.3:  # target straight below: look ahead instead
            f = np.array([*(pos[min(i + 1, frames - 1)] - pos[max(i - 1, 0)] + 1e-3), -0.3])
        f /= np.linalg.norm(f)
        x = np.cross(f, up)
        x /= np.linalg.norm(x)
        y = np.cross(f, x)
        cr, sr = math.cos(roll[i]), math.sin(roll[i])
        x, y = cr * x + sr * y, -sr * x + cr * y
        poses[i, :3, 0], poses[i, :3, 1], poses[i, :3, 2], poses[i, :3, 3] = x, y, f, c
        poses[i, 3, 3] = 1.0
    return room.world_from_room @ poses


# ------------------------------------------------------------------------------------------ writing
def room_type_for(seed: int, index: int) -> str:
    order = np.random.default_rng([seed, index // len(ROOM_TYPES), 104729]).permutation(len(ROOM_TYPES))
    return ROOM_TYPES[int(order[index % len(ROOM_TYPES)])]


def generate_scene(out_root: Path, index: int, cfg) -> dict:
    """Render and write one mesh room (cfg: procedural.GenerateConfig with source="meshes")."""

    t0 = time.perf_counter()
    look_cfg = ap.appearance_config(cfg.appearance, cfg.depth_sensor)
    rng = np.random.default_rng([cfg.seed, index, 2])
    room = build_room(rng, cfg.room_type or room_type_for(cfg.seed, index), look_cfg.photo_texture_prob)
    arrays = room_arrays(room)
    bvh = build_bvh(arrays["tri"])
    poses = camera_path(np.random.default_rng([cfg.seed, index, 3]), room, cfg.frames, cfg.step_m)
    cam_rng = np.random.default_rng([cfg.seed, index, 4])
    width, height, K = ap.random_camera(cam_rng, cfg.width, cfg.height, look_cfg)
    look = ap.SceneLook.draw(cam_rng, look_cfg)
    name = f"scene{index:04d}_00"
    root = Path(out_root) / name
    make_folders(root)
    write_intrinsics(root, K)
    lut = scannet_raw_to_class_lut()
    pixels = np.zeros(21, np.int64)
    render_s = 0.0
    for i, pose in enumerate(poses):
        t = time.perf_counter()
        rgb, depth, raw, shiny = render_view(room, arrays, bvh, pose, K, width, height)
        render_s += time.perf_counter() - t
        view_rng = np.random.default_rng([cfg.seed, index, 5, i])
        color = ap.camera_rgb(rgb, view_rng, look_cfg, look)
        depth = ap.depth_sensor(depth, rgb, view_rng, look_cfg.depth_sensor, shiny)
        pixels += np.bincount(lut[np.minimum(raw, len(lut) - 1)].ravel(), minlength=21)
        write_frame(root, i, color, depth, raw, pose, cfg.image_format)
    classes = sorted({int(lut[min(int(r), len(lut) - 1)]) for r in np.unique(arrays["raw"])} - {20})
    meta = {
        "generator": "gssplat_ros.data.meshes",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed, "index": index, "frames": len(poses), "width": width, "height": height,
        "image_format": cfg.image_format, "step_m": cfg.step_m, "appearance": cfg.appearance,
        "depth_sensor": look_cfg.depth_sensor, "room_type": room.room_type,
        "floor_plan_m": np.round(room.polygon, 3).tolist(), "room_height_m": round(room.height, 3),
        "triangles": int(len(arrays["tri"])),
        "classes": [CLASS_NAMES[c] for c in classes],
        "pixel_counts": {("other" if c == 20 else CLASS_NAMES[c]): int(n) for c, n in enumerate(pixels) if n},
        "objects": room.items,
    }  # fmt: skip
    write_json(root / "scene.json", meta)
    return {"scene": name, "frames": len(poses), "render_s": render_s, "total_s": time.perf_counter() - t0,
            "classes": meta["classes"]}
