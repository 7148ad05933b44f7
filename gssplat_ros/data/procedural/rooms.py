"""Procedural rooms: shell, doors, windows, furniture groups by room type, props and lights.

Usage:
    room = build_room(np.random.default_rng(0), "bedroom")
    room.geo          # SceneGeometry with every object
    room.obstacles()  # floor footprints the camera must avoid (tall ones) or may fly over (low ones)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from gssplat_ros.data.procedural import geometry as g
from gssplat_ros.data.procedural.geometry import RAW, Frame2D, SceneGeometry
from gssplat_ros.data.procedural.openings import Footprint, add_pictures, add_window  # noqa: F401 (room API)

ROOM_TYPES = ("bedroom", "living", "kitchen", "office", "bathroom", "studio")
TALL_M = 1.05  # footprints taller than this block the camera (which flies at 1.2-1.7 m)


@dataclass
class Room:
    rng: np.random.Generator
    lx: float
    ly: float
    h: float
    room_type: str
    geo: SceneGeometry = None  # type: ignore[assignment]
    footprints: list[Footprint] = field(default_factory=list)
    spans: dict[int, list[tuple[float, float, float, float]]] = field(default_factory=lambda: {i: [] for i in range(4)})
    lights: list[tuple[float, float, float, float]] = field(default_factory=list)
    ambient: float = 0.5

    def __post_init__(self):
        self.geo = SceneGeometry(self.rng)

    # ------------------------------------------------------------------------------------ walls
    def wall_length(self, w: int) -> float:
        return self.lx if w % 2 == 0 else self.ly

    def wall_frame(self, w: int, s: float, d: float, z: float = 0.0) -> Frame2D:
        """Frame at along-wall coordinate s, d metres into the room; local x along the wall, y into the room."""
        start = [(0.0, 0.0), (self.lx, 0.0), (self.lx, self.ly), (0.0, self.ly)][w]
        along = [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][w]
        normal = (-along[1], along[0])
        return Frame2D(start[0] + s * along[0] + d * normal[0], start[1] + s * along[1] + d * normal[1],
                       math.atan2(along[1], along[0]), z)

    def span_free(self, w: int, s0: float, s1: float, z0: float, z1: float, margin: float = 0.05) -> bool:
        if s0 < 0.02 or s1 > self.wall_length(w) - 0.02:
            return False
        return all(s1 + margin <= a or s0 - margin >= b or z1 <= c or z0 >= d for a, b, c, d in self.spans[w])

    # ------------------------------------------------------------------------------------ floor
    @staticmethod
    def _rect(frame: Frame2D, w: float, d: float, y0: float = None, y1: float = None):
        y0 = -d / 2 if y0 is None else y0
        y1 = d / 2 if y1 is None else y1
        pts = np.array([frame.to_world((x, y, 0.0))[:2] for x in (-w / 2, w / 2) for y in (y0, y1)])
        return pts.min(0), pts.max(0)

    def floor_free(self, lo, hi, solid: bool = True, margin: float = 0.03) -> bool:
        if lo[0] < -1e-6 or lo[1] < -1e-6 or hi[0] > self.lx + 1e-6 or hi[1] > self.ly + 1e-6:
            return False
        for f in self.footprints:
            if not solid and not f.solid:
                continue
            if np.all(lo < f.hi + margin) and np.all(hi > f.lo - margin):
                return False
        return True

    def reserve(self, frame: Frame2D, w: float, d: float, top: float, clearance: float = 0.0) -> None:
        lo, hi = self._rect(frame, w, d)
        self.footprints.append(Footprint(lo, hi, top))
        if clearance > 0:
            lo, hi = self._rect(frame, w, d, d / 2, d / 2 + clearance)
            self.footprints.append(Footprint(np.maximum(lo, 0), np.minimum(hi, [self.lx, self.ly]), 0.0, False))

    def place_wall(self, width: float, depth: float, height: float, clearance: float = 0.0, walls=None,
                   z0: float = 0.0, tries: int = 40, gap: float = 0.005) -> Optional[tuple[int, float, Frame2D]]:
        """Find a free spot against a wall; returns (wall, s centre, frame) and reserves it, or None."""
        walls = list(walls) if walls is not None else [0, 1, 2, 3]
        for _ in range(tries):
            w = walls[int(self.rng.integers(len(walls)))]
            L = self.wall_length(w)
            if L < width + 0.1:
                continue
            s = self.rng.uniform(0.05 + width / 2, L - 0.05 - width / 2)
            if not self.span_free(w, s - width / 2, s + width / 2, z0, z0 + height):
                continue
            frame = self.wall_frame(w, s, depth / 2 + gap)
            lo, hi = self._rect(frame, width, depth, -depth / 2, depth / 2 + clearance)
            if z0 < TALL_M and not self.floor_free(lo, hi):
                continue
            self.spans[w].append((s - width / 2, s + width / 2, z0, z0 + height))
            if z0 < TALL_M:
                self.reserve(frame, width, depth, z0 + height, clearance)
            else:  # wall-mounted above head height: still an obstacle for the camera
                self.footprints.append(Footprint(*self._rect(frame, width, depth), z0 + height))
            return w, s, frame
        return None

    def place_free(self, width: float, depth: float, height: float, wall_margin: float = 0.5,
                   tries: int = 40, yaw_jitter: float = 0.15) -> Optional[Frame2D]:
        for _ in range(tries):
            if self.lx - 2 * wall_margin < 0.1 or self.ly - 2 * wall_margin < 0.1:
                return None
            mx, my = wall_margin + width / 2, wall_margin + depth / 2
            x = self.rng.uniform(mx, max(mx, self.lx - mx))
            y = self.rng.uniform(my, max(my, self.ly - my))
            yaw = float(self.rng.integers(4)) * math.pi / 2 + self.rng.uniform(-yaw_jitter, yaw_jitter)
            frame = Frame2D(x, y, yaw)
            lo, hi = self._rect(frame, width, depth)
            if self.floor_free(lo, hi):
                self.footprints.append(Footprint(lo, hi, height))
                return frame
        return None

    def obstacles(self) -> list[Footprint]:
        return [f for f in self.footprints if f.solid]


# ------------------------------------------------------------------------------------------ shell
def build_shell(room: Room) -> None:
    rng, geo = room.rng, room.geo
    paint = g.pick(rng, g.PAINTS)
    wall_mat = (g.stripes(rng, paint, np.array(paint) * 0.9, rng.uniform(3.0, 8.0), axis=0) if rng.random() < 0.2
                else g.plain(rng, paint, 0.05, 1.5))
    accent = int(rng.integers(4)) if rng.random() < 0.25 else -1
    with geo.object("wall", RAW["wall"]):
        for w in range(4):
            L = room.wall_length(w)
            mat = wall_mat
            if w == accent:
                mat = g.plain(rng, g.pick(rng, g.PAINTS + [(0.6, 0.45, 0.4), (0.45, 0.55, 0.65)]), 0.05)
            geo.box(room.wall_frame(w, 0.0, 0.0), (L / 2, -0.05, room.h / 2), (L + 0.2, 0.1, room.h + 0.2), mat)
    t = room.room_type
    r = rng.random()
    if t in ("bathroom", "kitchen") and r < 0.75 or r < 0.2:
        c = g.pick(rng, [((0.85, 0.84, 0.8), (0.7, 0.7, 0.68)), ((0.6, 0.62, 0.65), (0.45, 0.46, 0.5)),
                         ((0.86, 0.8, 0.7), (0.86, 0.8, 0.7)), ((0.25, 0.25, 0.27), (0.9, 0.9, 0.88))])
        floor_mat = g.Material(g.rc.MAT_TILES, g.jitter(rng, c[0]), g.jitter(rng, c[1]),
                               scale=1.0 / rng.uniform(0.3, 0.6), axis=2, p1=rng.uniform(0.0, 1.0), p2=0.03)
    elif t == "office" and r < 0.6 or r < 0.3:
        carpets = [(0.4, 0.42, 0.45), (0.3, 0.33, 0.42), (0.55, 0.5, 0.44), (0.35, 0.3, 0.28)]
        floor_mat = g.fabric(rng, carpets, scale=15.0)
    else:
        floor_mat = g.wood(rng, axis=0, planks=rng.uniform(0.1, 0.2))
    with geo.object("floor", RAW["floor"]):
        geo.box(Frame2D(0, 0, 0), (room.lx / 2, room.ly / 2, -0.05), (room.lx + 0.2, room.ly + 0.2, 0.1), floor_mat)
    with geo.object("ceiling", RAW["ceiling"], shadow=False):
        geo.box(Frame2D(0, 0, 0), (room.lx / 2, room.ly / 2, room.h + 0.05), (room.lx + 0.2, room.ly + 0.2, 0.1),
                g.plain(rng, (0.94, 0.94, 0.93), 0.03, j=0.02))


def add_door(room: Room) -> bool:
    rng, geo = room.rng, room.geo
    dw, dh = rng.uniform(0.78, 0.95), rng.uniform(2.0, 2.1)
    for _ in range(30):
        w = int(rng.integers(4))
        L = room.wall_length(w)
        if L < dw + 0.5:
            continue
        s = rng.uniform(0.15 + dw / 2, L - 0.15 - dw / 2)
        if not room.span_free(w, s - dw / 2 - 0.1, s + dw / 2 + 0.1, 0.0, dh + 0.1):
            continue
        f = room.wall_frame(w, s, 0.0)
        lo, hi = room._rect(f, dw + 0.2, 0.9, 0.0, 0.9)
        if not room.floor_free(lo, hi):
            continue
        room.spans[w].append((s - dw / 2 - 0.1, s + dw / 2 + 0.1, 0.0, dh + 0.1))
        room.footprints.append(Footprint(lo, hi, 0.0, False))
        leaf = g.panel(rng, g.pick(rng, [(0.92, 0.92, 0.9)] + [c[0] for c in g.WOODS]), axis=1,
                       door_w=dw, groove=0.01)
        casing = g.plain(rng, g.pick(rng, [(0.93, 0.93, 0.91), (0.5, 0.36, 0.24)]), 0.03)
        side = 1.0 if rng.random() < 0.5 else -1.0
        with geo.object("door", RAW["door"]):
            geo.box(f, (0, 0.02, dh / 2), (dw, 0.04, dh), leaf)
            geo.cyl(f, (side * 0.38 * dw, 0.07, 1.0), 0.022, 0.06, g.metal(rng), rot=g.rot_x(-math.pi / 2))
        with geo.object("doorframe", RAW["doorframe"]):
            for sx in (-1, 1):
                geo.box(f, (sx * (dw / 2 + 0.035), 0.0125, (dh + 0.07) / 2), (0.07, 0.025, dh + 0.07), casing)
            geo.box(f, (0, 0.0125, dh + 0.035), (dw, 0.025, 0.07), casing)
        return True
    return False


def add_lights(room: Room) -> None:
    rng, geo = room.rng, room.geo
    area = room.lx * room.ly
    n = 1 if area < 12 else (2 if area < 26 else 3)
    room.ambient = rng.uniform(0.42, 0.55)
    along_x = room.lx >= room.ly
    for i in range(n):
        t = (i + 0.5) / n
        x = room.lx * t if along_x else room.lx * 0.5
        y = room.ly * 0.5 if along_x else room.ly * t
        x += rng.uniform(-0.3, 0.3)
        y += rng.uniform(-0.3, 0.3)
        z = room.h - 0.45
        room.lights.append((x, y, z, rng.uniform(0.55, 0.8) * (1.0 if n > 1 else 1.15)))
        with geo.object("lamp", RAW["lamp"], shadow=False):
            f = Frame2D(x, y, 0.0)
            geo.cyl(f, (0, 0, room.h - 0.15), rng.uniform(0.15, 0.25), 0.12,
                    g.plain(rng, (0.96, 0.95, 0.9), 0.02))
            geo.cyl(f, (0, 0, room.h - 0.05), 0.01, 0.1, g.metal(rng))


# ------------------------------------------------------------------------------------------ groups
# (populate functions live in rooms_groups to keep files short)
from gssplat_ros.data.procedural import rooms_groups as grp  # noqa: E402

SIZES = {
    "bedroom": ((3.2, 5.0), (3.0, 4.5)), "living": ((4.0, 6.5), (3.5, 5.5)), "kitchen": ((3.0, 5.0), (2.8, 4.5)),
    "office": ((3.5, 6.0), (3.0, 5.0)), "bathroom": ((2.6, 3.6), (2.2, 3.2)), "studio": ((5.0, 7.0), (4.0, 6.0)),
}  # fmt: skip

POPULATE: dict[str, Callable[[Room], None]] = {
    "bedroom": grp.bedroom, "living": grp.living, "kitchen": grp.kitchen, "office": grp.office,
    "bathroom": grp.bathroom, "studio": grp.studio,
}  # fmt: skip


def build_room(rng: np.random.Generator, room_type: Optional[str] = None) -> Room:
    """A furnished room of the given type (random if None)."""
    room_type = room_type or ROOM_TYPES[int(rng.integers(len(ROOM_TYPES)))]
    (x0, x1), (y0, y1) = SIZES[room_type]
    lx, ly = rng.uniform(x0, x1), rng.uniform(y0, y1)
    h = rng.uniform(2.3, 2.6) if room_type == "bathroom" else rng.uniform(2.45, 2.9)
    room = Room(rng, lx, ly, h, room_type)
    build_shell(room)
    add_door(room)
    if room_type in ("living", "studio") and rng.random() < 0.4:
        add_door(room)
    POPULATE[room_type](room)
    add_lights(room)
    return room
