"""Primitive lists for the ray caster, object frames, materials and class-typical palettes.

Usage:
    geo = SceneGeometry(rng)
    with geo.object("table", RAW["table"]):
        geo.box(frame, (0, 0, 0.74), (1.2, 0.8, 0.04), wood(rng))
    arrays = geo.arrays(lights, ambient)     # what raycast.render_view takes
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from gssplat_ros.data.procedural import raycast as rc

# Raw ScanNet ids written to label-filt (checked against the shipped tsv in tests): the NYU40 class of
# each is the ScanNet-20 class named in the comment, or "other" (ignored).
RAW = {
    "wall": 1, "floor": 3, "cabinet": 7, "kitchen cabinet": 29, "file cabinet": 75, "bathroom vanity": 1164,
    "bed": 11, "chair": 2, "office chair": 10, "armchair": 23, "sofa": 1313, "couch": 6, "table": 4,
    "coffee table": 24, "dining table": 45, "door": 5, "doorframe": 161, "window": 16, "bookshelf": 18,
    "picture": 15, "poster": 1188, "counter": 35, "kitchen counter": 159, "bathroom counter": 1156, "desk": 9,
    "curtain": 21, "refrigerator": 27, "shower curtain": 55, "toilet": 17, "sink": 14, "bathtub": 42,
    # otherfurniture
    "ottoman": 67, "bench": 68, "tv stand": 51, "trash can": 56, "wardrobe": 99, "radiator": 96,
    # other (NYU40 ids outside the 20): ignored by training and metrics
    "ceiling": 41, "pillow": 13, "lamp": 28, "monitor": 19, "plant": 40, "box": 26, "rug": 61,
    "nightstand": 34, "tv": 33, "mirror": 71, "object": 1163,
}  # fmt: skip


@dataclass
class Material:
    kind: int = rc.MAT_PLAIN
    a: Sequence[float] = (0.8, 0.8, 0.8)  # base colour, RGB 0-1
    b: Sequence[float] = (0.0, 0.0, 0.0)  # second colour / amplitude
    scale: float = 1.0  # spatial frequency, 1/m
    axis: int = 0  # local axis the pattern follows (see raycast._albedo)
    p1: float = 0.0
    p2: float = 0.0


@dataclass
class Frame2D:
    """An object's frame: origin on the floor, local x = width, y = depth (front), z = up, yaw about z."""

    x: float
    y: float
    yaw: float = 0.0
    z: float = 0.0

    @property
    def R(self) -> np.ndarray:
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def to_world(self, p) -> np.ndarray:
        return np.array([self.x, self.y, self.z]) + self.R @ np.asarray(p, dtype=np.float64)


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass
class _Object:
    name: str
    raw_id: int
    start: int
    end: int = -1
    shadow: bool = True


@dataclass
class SceneGeometry:
    rng: np.random.Generator
    prims: list[dict] = field(default_factory=list)
    objects: list[_Object] = field(default_factory=list)
    _open: Optional[_Object] = None

    @contextmanager
    def object(self, name: str, raw_id: int, shadow: bool = True):
        if self._open is not None:
            raise RuntimeError("objects do not nest")
        self._open = _Object(name, int(raw_id), len(self.prims), shadow=shadow)
        try:
            yield self
        finally:
            self._open.end = len(self.prims)
            if self._open.end > self._open.start:
                self.objects.append(self._open)
            self._open = None

    def _add(self, ptype: int, frame: Frame2D, center, half, mat: Material, rot: Optional[np.ndarray]) -> None:
        if self._open is None:
            raise RuntimeError("primitives must be added inside geo.object(...)")
        R = frame.R if rot is None else frame.R @ rot
        self.prims.append(dict(
            ptype=ptype, center=frame.to_world(center), rot=R, half=np.asarray(half, dtype=np.float64),
            mat=mat, off=float(self.rng.uniform(0.0, 97.0)), shadow=self._open.shadow,
        ))

    def box(self, frame: Frame2D, center, size, mat: Material, rot: Optional[np.ndarray] = None) -> None:
        """Box with full sizes (sx, sy, sz) centred at `center` in the frame."""
        self._add(rc.PRIM_BOX, frame, center, np.asarray(size, dtype=np.float64) / 2.0, mat, rot)

    def cyl(self, frame: Frame2D, center, radius: float, height: float, mat: Material,
            rot: Optional[np.ndarray] = None) -> None:
        """Cylinder along the local z axis (or `rot`'s), centred at `center`."""
        self._add(rc.PRIM_CYLINDER, frame, center, (radius, radius, height / 2.0), mat, rot)

    def sphere(self, frame: Frame2D, center, radius: float, mat: Material) -> None:
        self._add(rc.PRIM_SPHERE, frame, center, (radius, radius, radius), mat, None)

    # ------------------------------------------------------------------------------------ export
    def arrays(self, lights: np.ndarray, ambient: float, perm: np.ndarray) -> dict:
        P, O = len(self.prims), len(self.objects)
        a = dict(
            ptype=np.array([p["ptype"] for p in self.prims], np.int32),
            center=np.array([p["center"] for p in self.prims], np.float64).reshape(P, 3),
            rot=np.array([p["rot"] for p in self.prims], np.float64).reshape(P, 3, 3),
            half=np.array([p["half"] for p in self.prims], np.float64).reshape(P, 3),
            pshadow=np.array([p["shadow"] for p in self.prims], np.uint8),
            kind=np.array([p["mat"].kind for p in self.prims], np.int32),
            ca=np.array([p["mat"].a for p in self.prims], np.float64).reshape(P, 3),
            cb=np.array([p["mat"].b for p in self.prims], np.float64).reshape(P, 3),
            scale=np.array([p["mat"].scale for p in self.prims], np.float64),
            param=np.array([(p["mat"].axis, p["mat"].p1, p["mat"].p2, p["off"]) for p in self.prims],
                           np.float64).reshape(P, 4),
            perm=np.asarray(perm, np.int64),
            lights=np.asarray(lights, np.float64).reshape(-1, 4),
            ambient=float(ambient),
        )
        lo, hi = prim_bounds(a["ptype"], a["center"], a["rot"], a["half"])
        a["olo"] = np.array([lo[o.start:o.end].min(0) - 1e-6 for o in self.objects]).reshape(O, 3)
        a["ohi"] = np.array([hi[o.start:o.end].max(0) + 1e-6 for o in self.objects]).reshape(O, 3)
        a["ostart"] = np.array([o.start for o in self.objects], np.int32)
        a["oend"] = np.array([o.end for o in self.objects], np.int32)
        a["oshadow"] = np.array([o.shadow for o in self.objects], np.uint8)
        a["raw_ids"] = np.array([self._raw_of(k) for k in range(P)], np.uint16)
        return a

    def _raw_of(self, k: int) -> int:
        for o in self.objects:
            if o.start <= k < o.end:
                return o.raw_id
        raise IndexError(k)

    def object_summaries(self) -> list[dict]:
        lo, hi = prim_bounds(
            np.array([p["ptype"] for p in self.prims]), np.array([p["center"] for p in self.prims]),
            np.array([p["rot"] for p in self.prims]), np.array([p["half"] for p in self.prims]))
        return [
            dict(name=o.name, raw_id=o.raw_id, aabb_min=np.round(lo[o.start:o.end].min(0), 3).tolist(),
                 aabb_max=np.round(hi[o.start:o.end].max(0), 3).tolist(), primitives=o.end - o.start)
            for o in self.objects
        ]


def prim_bounds(ptype, center, rot, half) -> tuple[np.ndarray, np.ndarray]:
    """World AABBs [P, 3] x 2 of the primitives."""
    ext = np.einsum("pij,pj->pi", np.abs(rot), half)
    sph = ptype == rc.PRIM_SPHERE
    ext[sph] = half[sph, :1]
    return center - ext, center + ext


# ------------------------------------------------------------------------------------------ palettes
def jitter(rng: np.random.Generator, rgb, amount: float = 0.04) -> tuple[float, float, float]:
    c = np.asarray(rgb, dtype=np.float64) * (1.0 + rng.uniform(-amount, amount)) + rng.uniform(-amount, amount, 3) * 0.5
    return tuple(np.clip(c, 0.02, 0.98).tolist())


def pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


WOODS = [((0.62, 0.44, 0.27), (0.50, 0.33, 0.19)), ((0.76, 0.61, 0.42), (0.64, 0.48, 0.31)),
         ((0.42, 0.27, 0.16), (0.32, 0.19, 0.11)), ((0.83, 0.71, 0.53), (0.72, 0.58, 0.40)),
         ((0.55, 0.30, 0.20), (0.44, 0.22, 0.14))]  # fmt: skip
PAINTS = [(0.92, 0.91, 0.88), (0.86, 0.87, 0.88), (0.91, 0.86, 0.77), (0.80, 0.86, 0.80), (0.82, 0.86, 0.93),
          (0.94, 0.88, 0.80), (0.76, 0.76, 0.74), (0.88, 0.82, 0.84)]  # fmt: skip
FABRICS = [(0.50, 0.50, 0.52), (0.30, 0.30, 0.33), (0.26, 0.34, 0.55), (0.46, 0.30, 0.20), (0.32, 0.46, 0.36),
           (0.75, 0.68, 0.55), (0.56, 0.20, 0.17), (0.18, 0.22, 0.35), (0.62, 0.56, 0.48)]  # fmt: skip
BEDDING = [(0.88, 0.88, 0.86), (0.62, 0.73, 0.86), (0.80, 0.78, 0.72), (0.72, 0.34, 0.32), (0.45, 0.58, 0.45),
           (0.30, 0.34, 0.48), (0.86, 0.74, 0.52)]  # fmt: skip
FURNITURE_PAINT = [(0.90, 0.90, 0.88), (0.55, 0.56, 0.58), (0.22, 0.22, 0.24), (0.50, 0.58, 0.52),
                   (0.30, 0.38, 0.50)]  # fmt: skip
CERAMIC = (0.93, 0.93, 0.92)


def plain(rng, rgb, amp: float = 0.06, scale: float = 2.0, j: float = 0.04) -> Material:
    return Material(rc.MAT_PLAIN, jitter(rng, rgb, j), scale=scale, p1=amp)


def wood(rng, axis: int = 0, planks: float = 0.0, colors=None) -> Material:
    a, b = colors or pick(rng, WOODS)
    return Material(rc.MAT_WOOD, jitter(rng, a), jitter(rng, b), scale=rng.uniform(2.0, 4.0), axis=axis,
                    p1=rng.uniform(0.5, 1.5), p2=planks)


def fabric(rng, colors=FABRICS, scale: Optional[float] = None) -> Material:
    return Material(rc.MAT_FABRIC, jitter(rng, pick(rng, colors), 0.06), scale=scale or rng.uniform(8.0, 20.0))


def metal(rng, rgb=(0.72, 0.72, 0.74), axis: int = 2) -> Material:
    return Material(rc.MAT_METAL, jitter(rng, rgb, 0.05), scale=rng.uniform(30.0, 60.0), axis=axis)


def panel(rng, rgb, axis: int = 1, door_w: float = 0.45, door_h: float = 0.0, groove: float = 0.012) -> Material:
    """Painted or wooden fronts with dark grooves every door_w (and door_h) metres; axis = front normal."""
    return Material(rc.MAT_PANEL, jitter(rng, rgb), scale=1.0 / door_w, axis=axis, p1=groove,
                    p2=(1.0 / door_h) if door_h > 0 else 0.0)


def furniture_surface(rng, axis: int = 1, door_w: float = 0.45, door_h: float = 0.0) -> Material:
    if rng.random() < 0.5:
        return panel(rng, pick(rng, WOODS)[0], axis, door_w, door_h)
    return panel(rng, pick(rng, FURNITURE_PAINT), axis, door_w, door_h)


def marble(rng) -> Material:
    a, b = pick(rng, [((0.90, 0.89, 0.87), (0.55, 0.55, 0.57)), ((0.30, 0.30, 0.32), (0.70, 0.70, 0.70)),
                      ((0.80, 0.74, 0.64), (0.45, 0.38, 0.30)), ((0.62, 0.64, 0.66), (0.92, 0.92, 0.92))])
    return Material(rc.MAT_MARBLE, jitter(rng, a), jitter(rng, b), scale=rng.uniform(2.0, 5.0))


def canvas(rng) -> Material:
    base = rng.uniform(0.25, 0.75, 3)
    amp = rng.uniform(0.3, 0.9, 3)
    return Material(rc.MAT_CANVAS, tuple(base), tuple(amp), scale=rng.uniform(2.0, 7.0))


def folds(rng, colors=None, axis: int = 0) -> Material:
    colors = colors or [(0.80, 0.74, 0.62), (0.55, 0.56, 0.60), (0.28, 0.36, 0.58), (0.62, 0.22, 0.20),
                        (0.38, 0.52, 0.40), (0.90, 0.88, 0.84), (0.55, 0.42, 0.58)]
    return Material(rc.MAT_FOLDS, jitter(rng, pick(rng, colors)), scale=rng.uniform(5.0, 9.0), axis=axis)


def stripes(rng, a, b, scale: float, axis: int = 0) -> Material:
    return Material(rc.MAT_STRIPES, jitter(rng, a), jitter(rng, b), scale=scale, axis=axis)


def glass(rng) -> Material:
    sky = jitter(rng, pick(rng, [(0.55, 0.72, 0.95), (0.68, 0.80, 0.95), (0.80, 0.85, 0.90)]), 0.03)
    horizon = jitter(rng, (0.93, 0.95, 0.97), 0.02)
    return Material(rc.MAT_GLASS, sky, horizon, scale=rng.uniform(1.0, 3.0))


def books(rng, axis: int = 0) -> Material:
    back = pick(rng, WOODS)[1]
    return Material(rc.MAT_BOOKS, jitter(rng, back), scale=rng.uniform(25.0, 40.0), axis=axis)
