"""Rooms of triangle meshes: floor plans, furniture placement, clutter, lights and camera paths.

Usage:
    room = build_room(np.random.default_rng([seed, index]), "kitchen", photo_prob=0.5)
    room.parts          # list[furniture.Part] in world metres (z up)
    poses = camera_path(np.random.default_rng([seed, index, 1]), room, frames=60, step_m=0.07)

Layout rules (chosen to differ from `data/procedural`): floor plans are rectangles, L-shapes or rectangles
with one corner cut at a random angle; the whole room is turned by a random yaw and moved off the origin,
so walls are not aligned with the world axes. Wall items are placed along every wall by an occupancy grid;
free-standing groups (a table with chairs pulled out at random angles, a sofa facing a coffee table) get any
yaw; tables, desks, counters and low cabinets carry clutter. Cameras follow a spline through free space,
aimed at furniture, at 1.1-1.7 m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import trimesh

from gssplat_ros.data.appearance import PHOTOS, photo_index
from gssplat_ros.data.meshes import furniture as fu

GRID_M = 0.05
ROOM_TYPES = ("bedroom", "living", "kitchen", "bathroom", "office", "dining")
WALL_ITEMS = {
    "bedroom": ["bed", "cabinet", "cabinet", "bookshelf", "desk", "otherfurniture"],
    "living": ["sofa", "bookshelf", "cabinet", "otherfurniture", "cabinet"],
    "kitchen": ["sink counter", "counter", "refrigerator", "cabinet", "otherfurniture"],
    "bathroom": ["bathtub", "toilet", "vanity", "cabinet"],
    "office": ["desk", "desk", "bookshelf", "cabinet", "otherfurniture"],
    "dining": ["cabinet", "bookshelf", "otherfurniture"],
}  # fmt: skip
CENTRE_GROUPS = {
    "bedroom": ["chair"], "living": ["lounge", "chair"], "kitchen": ["dining"], "bathroom": [],
    "office": ["dining", "office chair"], "dining": ["dining", "chair"],
}  # fmt: skip


@dataclass
class MeshRoom:
    room_type: str
    polygon: np.ndarray  # [P, 2] floor outline in the room frame, counter-clockwise
    height: float
    world_from_room: np.ndarray  # [4, 4]: yaw about z and an offset
    parts: list[fu.Part] = field(default_factory=list)  # world frame
    items: list[dict] = field(default_factory=list)  # summaries for scene.json
    lights: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # [L, 3] world
    ambient: float = 0.35
    free: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # [Gx, Gy] floor cells free
    grid_lo: np.ndarray = field(default_factory=lambda: np.zeros(2))  # room-frame corner of cell (0, 0)


# ------------------------------------------------------------------------------------------ plans
def floor_plan(rng) -> np.ndarray:
    """[P, 2] counter-clockwise outline: rectangle, L-shape or a rectangle with one corner cut at an angle."""
    w, d = rng.uniform(3.2, 6.5), rng.uniform(3.0, 6.0)
    kind = rng.random()
    if kind < 0.35:
        return np.array([(0, 0), (w, 0), (w, d), (0, d)], float)
    if kind < 0.7:
        cw, cd = w * rng.uniform(0.3, 0.5), d * rng.uniform(0.3, 0.5)
        return np.array([(0, 0), (w, 0), (w, d - cd), (w - cw, d - cd), (w - cw, d), (0, d)], float)
    c1, c2 = rng.uniform(0.8, 0.45 * w), rng.uniform(0.8, 0.45 * d)
    return np.array([(0, 0), (w, 0), (w, d - c2), (w - c1, d), (0, d)], float)


def _inside(poly: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """[N] bool: points [N, 2] inside the polygon (even-odd crossing rule)."""
    x, y = pts[:, 0], pts[:, 1]
    inside = np.zeros(len(pts), bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, 0)):
        crosses = (y0 > y) != (y1 > y)
        xc = x0 + (y - y0) * (x1 - x0) / np.where(y1 != y0, y1 - y0, 1e-12)
        inside ^= crosses & (x < xc)
    return inside


def _fan(poly: np.ndarray) -> np.ndarray:
    """Triangles [T, 3] (vertex indices) fanning from a vertex that sees the whole (star-shaped) outline."""
    n = len(poly)
    for c in range(n):
        tris = [(c, (c + k) % n, (c + k + 1) % n) for k in range(1, n - 1)]
        a = [float(np.linalg.det(np.stack([poly[j] - poly[i], poly[k] - poly[i]]))) for i, j, k in tris]
        if min(a) > 1e-9:
            return np.array(tris)
    raise ValueError("floor plan is not star-shaped from any vertex")


def _shell(poly: np.ndarray, h: float, rng, tex_rng, photo_prob: float) -> list[fu.Part]:
    tris = _fan(poly)
    v2 = np.concatenate([poly, np.zeros((len(poly), 1))], 1)
    floor = trimesh.Trimesh(v2, tris, process=False)
    ceiling = trimesh.Trimesh(v2 + (0, 0, h), tris[:, ::-1], process=False)
    floor_mat = fu.wood(rng) if rng.random() < 0.5 else fu.fabric(rng)
    floor_mat.texture_scale_m = rng.uniform(0.4, 1.2)
    if tex_rng.random() < max(photo_prob, 0.3):
        floor_mat.texture = photo_index(str(tex_rng.choice(["brick", "grass", "gravel", "coins"])))  # floor-like scans
    parts = [fu.Part(floor, "floor", floor_mat), fu.Part(ceiling, "ceiling", fu.ceramic(rng))]
    wall_mat = fu.paint(rng)
    for a, b in zip(poly, np.roll(poly, -1, 0)):
        v = np.array([[*a, 0], [*b, 0], [*b, h], [*a, h]], float)
        parts.append(fu.Part(trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False), "wall", wall_mat))
    return parts


# ------------------------------------------------------------------------------------------ placement
class _Planner:
    """Occupancy of the floor in the room frame, and the wall intervals already used."""

    def __init__(self, poly: np.ndarray):
        self.poly = poly
        self.lo = poly.min(0) - GRID_M
        n = np.ceil((poly.max(0) + GRID_M - self.lo) / GRID_M).astype(int)
        gx, gy = np.meshgrid(np.arange(n[0]), np.arange(n[1]), indexing="ij")
        self.centres = np.stack([gx, gy], -1).reshape(-1, 2) * GRID_M + self.lo + GRID_M / 2
        self.inside = _inside(poly, self.centres).reshape(n)
        self.occupied = np.zeros(n, bool)
        self.wall_used: dict[int, list[tuple[float, float, float]]] = {}

    def cells(self, centre, half, yaw, margin: float = 0.0) -> np.ndarray:
        c, s = math.cos(yaw), math.sin(yaw)
        d = self.centres - centre
        lx, ly = d[:, 0] * c + d[:, 1] * s, -d[:, 0] * s + d[:, 1] * c
        return ((np.abs(lx) <= half[0] + margin) & (np.abs(ly) <= half[1] + margin)).reshape(self.occupied.shape)

    def fits(self, centre, half, yaw) -> bool:
        # every corner inside the room, and no occupied cell under the footprint
        c, s = math.cos(yaw), math.sin(yaw)
        corners = np.array([(sx * half[0], sy * half[1]) for sx in (-1, 1) for sy in (-1, 1)])
        corners = corners @ np.array([[c, s], [-s, c]]) + centre
        if not _inside(self.poly, corners).all():
            return False
        m = self.cells(centre, half, yaw)
        return bool(m.any() and self.inside[m].all() and not self.occupied[m].any())

    def take(self, centre, half, yaw, margin: float = 0.05) -> None:
        self.occupied |= self.cells(centre, half, yaw, margin)

    def wall_free(self, wall: int, t0: float, t1: float, below: float) -> bool:
        return all(b <= t0 or a >= t1 or top < below for a, b, top in self.wall_used.get(wall, []))

    def use_wall(self, wall: int, t0: float, t1: float, top: float) -> None:
        self.wall_used.setdefault(wall, []).append((t0, t1, top))


def _walls(poly: np.ndarray):
    for i, (a, b) in enumerate(zip(poly, np.roll(poly, -1, 0))):
        e = b - a
        length = float(np.linalg.norm(e))
        e = e / length
        yield i, a, e, np.array([-e[1], e[0]]), length  # inward normal of a counter-clockwise outline


def _place(room_parts: list, items: list, item: fu.Item, centre, yaw: float, z: float = 0.0) -> None:
    T = trimesh.transformations.rotation_matrix(yaw, (0, 0, 1))
    T[:3, 3] = (centre[0], centre[1], z)
    for p in item.parts:
        room_parts.append(fu.Part(p.mesh.copy().apply_transform(T), p.raw, p.material))
    items.append({"kind": item.kind, "raw": item.parts[0].raw, "centre": [float(centre[0]), float(centre[1]), z],
                  "yaw": float(yaw), "half": [float(item.half[0]), float(item.half[1])],
                  "height": float(item.height), "top": item.top, "top_half": list(item.top_half)})


def _yaw_facing(normal: np.ndarray) -> float:
    """Yaw that turns an item's front (+y) to `normal`."""
    return math.atan2(normal[1], normal[0]) - math.pi / 2


def _wall_item(rng, plan: _Planner, parts: list, items: list, item: fu.Item) -> bool:
    walls = list(_walls(plan.poly))
    for _ in range(30):
        i, a, e, n, length = walls[int(rng.integers(len(walls)))]
        if length < 2 * item.half[0] + 0.1:
            continue
        t = rng.uniform(item.half[0] + 0.05, length - item.half[0] - 0.05)
        centre = a + e * t + n * (item.half[1] + 0.02)
        yaw = _yaw_facing(n)
        if plan.wall_free(i, t - item.half[0], t + item.half[0], 0.0) and plan.fits(centre, item.half, yaw):
            plan.take(centre, item.half, yaw)
            plan.use_wall(i, t - item.half[0], t + item.half[0], item.height)
            _place(parts, items, item, centre, yaw)
            return True
    return False


def _free_item(rng, plan: _Planner, parts: list, items: list, item: fu.Item, centre=None, yaw=None) -> bool:
    for _ in range(1 if centre is not None else 40):
        c = centre if centre is not None else plan.centres[rng.integers(len(plan.centres))]
        y = yaw if yaw is not None else rng.uniform(0, 2 * math.pi)
        if plan.fits(c, item.half, y):
            plan.take(c, item.half, y)
            _place(parts, items, item, c, y)
            return True
    return False


def _group(rng, kind: str, plan: _Planner, parts: list, items: list) -> None:
    if kind in ("chair", "office chair"):
        _free_item(rng, plan, parts, items, fu.build(kind, rng))
        return
    centre_item = fu.build("dining table" if kind == "dining" else "coffee table", rng)
    for _ in range(30):
        c = plan.centres[rng.integers(len(plan.centres))]
        yaw = rng.uniform(0, 2 * math.pi)
        if not plan.fits(c, (centre_item.half[0] + 0.55, centre_item.half[1] + 0.55), yaw):
            continue
        _free_item(rng, plan, parts, items, centre_item, c, yaw)
        R = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        if kind == "lounge":
            s = fu.build("sofa", rng)
            pos = c + R @ (0.0, -(centre_item.half[1] + 0.45 + s.half[1]))
            _free_item(rng, plan, parts, items, s, pos, yaw)
            return
        seats = [(sx * (centre_item.half[0] - 0.3 - k * 0.6), sy) for sy in (-1, 1) for sx in (-1, 1) for k in range(2)
                 if centre_item.half[0] - 0.3 - k * 0.6 > -0.05]
        for x, sy in seats[: int(rng.integers(2, 7))]:
            ch = fu.build("chair", rng)
            pull = rng.uniform(0.0, 0.25)
            pos = c + R @ (x, sy * (centre_item.half[1] + ch.half[1] - 0.1 + pull))
            # the chair's front faces the table, turned a little as if someone had left it
            _free_item(rng, plan, parts, items, ch, pos, yaw + (0.0 if sy < 0 else math.pi) + rng.normal(0, 0.25))
        return


def _wall_decor(rng, plan: _Planner, parts: list, items: list, h: float) -> None:
    walls = list(_walls(plan.poly))
    specs = [("door", 1 + int(rng.random() < 0.3)), ("window", int(rng.integers(0, 3))),
             ("picture", int(rng.integers(1, 4)))]
    for kind, count in specs:
        for _ in range(count):
            for _try in range(20):
                i, a, e, n, length = walls[int(rng.integers(len(walls)))]
                if kind == "door":
                    w, hh, z0 = rng.uniform(0.8, 0.95), rng.uniform(2.0, min(2.15, h - 0.2)), 0.0
                elif kind == "window":
                    w, hh, z0 = rng.uniform(0.8, 1.6), rng.uniform(1.0, 1.4), rng.uniform(0.8, 1.0)
                else:
                    w, hh, z0 = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), rng.uniform(1.3, 1.7)
                if length < w + 0.3:
                    continue
                t = rng.uniform(w / 2 + 0.15, length - w / 2 - 0.15)
                if not plan.wall_free(i, t - w / 2 - 0.1, t + w / 2 + 0.1, z0):
                    continue
                yaw = _yaw_facing(n)
                if kind == "door":
                    keep = a + e * t + n * 0.45
                    if not plan.fits(keep, (w / 2, 0.45), yaw):
                        continue
                    plan.take(keep, (w / 2, 0.45), yaw, 0.0)
                mat = fu.paint(rng) if kind != "door" else fu.wood(rng)
                depth = {"door": 0.04, "window": 0.03, "picture": 0.025}[kind]
                panel = fu.Part(fu.box((w, depth, hh), (0, 0, z0 + hh / 2)), kind, mat)
                item = fu.Item(kind, [panel], (w / 2, depth / 2), z0 + hh)
                if kind == "picture":
                    mat.texture, mat.texture_scale_m, mat.texture_strength = int(rng.integers(len(PHOTOS))), max(w, hh), 1.0
                    mat.color = (0.8, 0.8, 0.8)
                elif kind == "window":
                    mat.color = tuple(np.clip(np.array(mat.color) * 0.3 + 0.65, 0, 1))  # daylight behind glass
                    if rng.random() < 0.6:
                        cm = fu.fabric(rng)
                        for sx in (-1, 1):
                            cw = rng.uniform(0.3, 0.5)
                            item.parts.append(fu.Part(fu.drape(cw, z0 + hh + 0.2, 0.06, 3).apply_translation(
                                (sx * (w / 2 + cw / 2 - 0.05), 0.08, 0.0)), "curtain", cm))
                elif kind == "door":
                    item.parts.append(fu.Part(fu.rod(0.01, 0.95, 1.0, w / 2 - 0.08, 0.04, 6), "door", fu.metal(rng)))
                    item.parts.append(fu.Part(fu.box((w + 0.12, 0.05, 0.06), (0, 0, z0 + hh + 0.03)), "doorframe", mat))
                _place(parts, items, item, a + e * t + n * (depth / 2 + 0.005), yaw)
                plan.use_wall(i, t - w / 2, t + w / 2, z0 + hh if kind != "picture" else 9.0)
                break


def _clutter(rng, parts: list, items: list) -> None:
    for it in list(items):
        if it["top"] is None or rng.random() < 0.2:
            continue
        hx, hy = it["top_half"]
        c, s = math.cos(it["yaw"]), math.sin(it["yaw"])
        for _ in range(int(rng.integers(1, 7))):
            lx, ly = rng.uniform(-hx, hx), rng.uniform(-hy, hy)
            p = fu.clutter(rng)
            T = trimesh.transformations.rotation_matrix(rng.uniform(0, 2 * math.pi), (0, 0, 1))
            T[:3, 3] = (it["centre"][0] + c * lx - s * ly, it["centre"][1] + s * lx + c * ly, it["top"])
            parts.append(fu.Part(p.mesh.apply_transform(T), p.raw, p.material))


# ------------------------------------------------------------------------------------------ rooms
def build_room(rng, room_type: str, photo_prob: float = 0.0) -> MeshRoom:
    """A furnished room; `photo_prob` is the share of furniture parts that get a photo texture."""
    if room_type not in ROOM_TYPES:
        raise ValueError(f"unknown room type {room_type!r} ({', '.join(ROOM_TYPES)})")
    poly = floor_plan(rng)
    if room_type == "bathroom":
        poly = poly * rng.uniform(0.55, 0.7)
    h = rng.uniform(2.4, 3.0)
    plan = _Planner(poly)
    # textures draw from their own stream, so the same (seed, index) gives the same room at every photo_prob
    tex_rng = np.random.default_rng(int(rng.integers(2**32)))
    parts = _shell(poly, h, rng, tex_rng, photo_prob)
    items: list[dict] = []
    _wall_decor(rng, plan, parts, items, h)
    wall_list = list(WALL_ITEMS[room_type])
    rng.shuffle(wall_list)
    for kind in wall_list[: max(2, len(wall_list) - int(rng.integers(0, 2)))]:
        item = fu.build(kind, rng)
        if _wall_item(rng, plan, parts, items, item) and kind == "desk":
            _group(rng, "office chair", plan, parts, items)
        if kind == "bathtub" and item.tags.get("curtain") and items and items[-1]["kind"] == "bathtub":
            it = items[-1]
            cur = fu.drape(2 * it["half"][1], 1.6, 0.05, 5, 0.4).apply_transform(
                trimesh.transformations.rotation_matrix(math.pi / 2, (0, 0, 1)))
            T = trimesh.transformations.rotation_matrix(it["yaw"], (0, 0, 1))
            T[:3, 3] = (*it["centre"][:2], 0.0)
            cur.apply_translation((it["half"][0] - 0.05, 0, 0)).apply_transform(T)
            parts.append(fu.Part(cur, "shower curtain", fu.fabric(rng)))
    for kind in CENTRE_GROUPS[room_type]:
        _group(rng, kind, plan, parts, items)
    _clutter(rng, parts, items)
    textured = {"floor", "ceiling", "wall", "picture"}
    for p in parts:
        if p.raw not in textured and p.material.texture < 0 and tex_rng.random() < photo_prob:
            p.material.texture = int(tex_rng.integers(len(PHOTOS)))
            p.material.texture_scale_m = float(tex_rng.uniform(0.2, 1.0))
    yaw = rng.uniform(0, 2 * math.pi)
    world = trimesh.transformations.rotation_matrix(yaw, (0, 0, 1))
    world[:2, 3] = rng.uniform(-3.0, 3.0, 2)
    for p in parts:
        p.mesh.apply_transform(world)
    n_lights = int(rng.integers(1, 4))
    pts = plan.centres[plan.inside.ravel()]
    lights = np.concatenate([pts[rng.integers(len(pts), size=n_lights)], np.full((n_lights, 1), h - 0.25)], 1)
    lights = lights @ world[:3, :3].T + world[:3, 3]
    for it in items:
        it["centre"] = [round(float(v), 3) for v in (world[:3, :3] @ it["centre"] + world[:3, 3])]
        it["yaw"] = round(it["yaw"] + yaw, 4)
    return MeshRoom(room_type, poly, h, world, parts, items, lights, float(rng.uniform(0.25, 0.45)),
                    plan.inside & ~plan.occupied, plan.lo)
