"""Furniture and clutter as triangle meshes (trimesh primitives), each part labelled with a ScanNet raw category.

Usage:
    obj = build("table", rng)            # Item: parts in the item's frame, footprint half sizes, top height
    obj.parts[0].mesh, obj.parts[0].raw   # trimesh.Trimesh (metres), "table"

Item frame: origin on the floor at the footprint centre, x = width, y = depth with the front at +y, z up.
Shapes differ from `data/procedural` on purpose (rounded cushions, tapered and round legs, slanted backs,
inset doors, draped curtains): the two sources share no geometry code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import trimesh
from trimesh import creation


@dataclass
class Material:
    color: tuple[float, float, float]  # albedo, linear 0-1
    texture: int = -1  # photo texture index (appearance.photo_textures), -1 = plain
    texture_scale_m: float = 0.6  # size of one texture tile on the surface
    texture_strength: float = 0.8  # 0 = plain colour, 1 = full photo contrast
    shiny: bool = False  # specular: depth sensors often miss it


@dataclass
class Part:
    mesh: trimesh.Trimesh
    raw: str  # ScanNet raw_category (labels.scannet_raw_id)
    material: Material


@dataclass
class Item:
    kind: str
    parts: list[Part]
    half: tuple[float, float]  # footprint half sizes (x, y), metres
    height: float
    top: Optional[float] = None  # height of a surface that carries clutter
    top_half: tuple[float, float] = (0.0, 0.0)  # half sizes of that surface
    tags: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ colours
def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = (float(c) for c in np.clip([abs(h * 6 - 3) - 1, 2 - abs(h * 6 - 2), 2 - abs(h * 6 - 4)], 0, 1))
    return tuple(v * (1 - s + s * c) for c in (r, g, b))  # type: ignore[return-value]


def wood(rng) -> Material:
    return Material(_hsv(rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.7), rng.uniform(0.25, 0.75)))


def fabric(rng) -> Material:
    return Material(_hsv(rng.random(), rng.uniform(0.05, 0.7), rng.uniform(0.15, 0.85)))


def paint(rng) -> Material:
    return Material(_hsv(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.55, 0.95)))


def metal(rng) -> Material:
    return Material(_hsv(0.6, 0.05, rng.uniform(0.3, 0.8)), shiny=True)


def ceramic(rng) -> Material:
    return Material(_hsv(rng.uniform(0.5, 0.7), rng.uniform(0.0, 0.1), rng.uniform(0.8, 0.97)))


# ------------------------------------------------------------------------------------------ primitives
def box(size, center, yaw: float = 0.0, pitch: float = 0.0) -> trimesh.Trimesh:
    m = creation.box(extents=size)
    if pitch:
        m.apply_transform(trimesh.transformations.rotation_matrix(pitch, (1, 0, 0)))
    if yaw:
        m.apply_transform(trimesh.transformations.rotation_matrix(yaw, (0, 0, 1)))
    return m.apply_translation(center)


def rod(radius: float, z0: float, z1: float, x: float, y: float, sections: int = 10) -> trimesh.Trimesh:
    return creation.cylinder(radius=radius, height=z1 - z0, sections=sections).apply_translation((x, y, (z0 + z1) / 2))


def cushion(size, center) -> trimesh.Trimesh:
    """A rounded box: a capsule along x squashed to `size`."""
    sx, sy, sz = size
    r = min(sy, sz) / 2
    m = creation.capsule(height=max(sx - 2 * r, 1e-3), radius=r, count=(8, 8))
    m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (0, 1, 0)))
    m.apply_scale((1.0, sy / (2 * r), sz / (2 * r)))
    return m.apply_translation(center)


def drape(width: float, height: float, depth: float, folds: int, z0: float = 0.0) -> trimesh.Trimesh:
    """A hanging cloth: a plane in x-z waved along y (front +y)."""
    nx, nz = max(8, folds * 6), 4
    xs = np.linspace(-width / 2, width / 2, nx)
    zs = np.linspace(z0, z0 + height, nz)
    X, Z = np.meshgrid(xs, zs, indexing="ij")
    Y = depth / 2 * np.sin(2 * math.pi * folds * (X / width + 0.5))
    v = np.stack([X, Y, Z], -1).reshape(-1, 3)
    idx = np.arange(nx * nz).reshape(nx, nz)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    f = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return trimesh.Trimesh(v, f, process=False)


# ------------------------------------------------------------------------------------------ furniture
def table(rng, raw: str = "table") -> Item:
    w, d = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0)
    h = rng.uniform(0.42, 0.5) if raw == "coffee table" else rng.uniform(0.7, 0.78)
    mat, legs = wood(rng), wood(rng) if rng.random() < 0.3 else None
    legs = legs or mat
    t = rng.uniform(0.025, 0.05)
    parts = []
    if rng.random() < 0.3:  # round top on a pedestal
        w = d = max(w, d) * 0.8
        parts.append(Part(rod(w / 2, h - t, h, 0, 0, 24), raw, mat))
        parts.append(Part(rod(0.05, 0.03, h - t, 0, 0), raw, legs))
        parts.append(Part(rod(0.25 * w, 0.0, 0.03, 0, 0, 16), raw, legs))
    else:
        parts.append(Part(box((w, d, t), (0, 0, h - t / 2)), raw, mat))
        r = rng.uniform(0.02, 0.035)
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(Part(rod(r, 0.0, h - t, sx * (w / 2 - 0.06), sy * (d / 2 - 0.06), 8), raw, legs))
    return Item(raw, parts, (w / 2, d / 2), h, top=h, top_half=(w / 2 - 0.05, d / 2 - 0.05))


def desk(rng) -> Item:
    w, d, h = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.75), rng.uniform(0.72, 0.76)
    mat = wood(rng) if rng.random() < 0.6 else paint(rng)
    parts = [Part(box((w, d, 0.03), (0, 0, h - 0.015)), "desk", mat)]
    for sx in (-1, 1):
        parts.append(Part(box((0.03, d - 0.02, h - 0.03), (sx * (w / 2 - 0.015), 0, (h - 0.03) / 2)), "desk", mat))
    dw = rng.uniform(0.35, 0.45)
    parts.append(Part(box((dw, d - 0.05, 0.5), (w / 2 - 0.03 - dw / 2, 0.0, h - 0.28)), "desk", mat))
    parts.append(Part(box((0.12, 0.02, 0.015), (w / 2 - 0.03 - dw / 2, d / 2 - 0.02, h - 0.12)), "desk", metal(rng)))
    return Item("desk", parts, (w / 2, d / 2), h, top=h, top_half=(w / 2 - 0.05, d / 2 - 0.05))


def chair(rng, raw: str = "chair") -> Item:
    w, d = rng.uniform(0.42, 0.52), rng.uniform(0.42, 0.52)
    seat, back = rng.uniform(0.43, 0.48), rng.uniform(0.35, 0.5)
    mat = wood(rng) if rng.random() < 0.5 else fabric(rng)
    frame = metal(rng) if raw == "office chair" else mat
    parts = []
    if raw == "office chair":
        parts.append(Part(cushion((w, d, 0.08), (0, 0, seat)), raw, mat))
        parts.append(Part(rod(0.025, 0.08, seat - 0.04, 0, 0), raw, frame))
        for k in range(5):
            a = 2 * math.pi * k / 5
            parts.append(Part(box((0.3, 0.04, 0.03), (0.15 * math.cos(a), 0.15 * math.sin(a), 0.06), yaw=a), raw, frame))
        parts.append(Part(cushion((w * 0.95, 0.07, back), (0, -d / 2 + 0.02, seat + 0.08 + back / 2)), raw, mat))
    else:
        parts.append(Part(box((w, d, 0.04), (0, 0, seat - 0.02)), raw, mat))
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(Part(rod(0.018, 0, seat - 0.04, sx * (w / 2 - 0.03), sy * (d / 2 - 0.03), 6), raw, frame))
        tilt = rng.uniform(0.0, 0.2)
        parts.append(Part(box((w, 0.03, back), (0, -d / 2 + 0.02 - 0.5 * back * math.sin(tilt), seat + back / 2),
                              pitch=-tilt), raw, mat))
    return Item(raw, parts, (w / 2, d / 2), seat + back)


def sofa(rng) -> Item:
    raw = "sofa" if rng.random() < 0.5 else "couch"
    seats = int(rng.integers(2, 4))
    sw, d, seat = rng.uniform(0.55, 0.7), rng.uniform(0.8, 0.95), rng.uniform(0.4, 0.46)
    arm = rng.uniform(0.1, 0.2)
    w = seats * sw + 2 * arm
    mat = fabric(rng)
    parts = [Part(box((w, d, seat - 0.12), (0, 0, (seat - 0.12) / 2 + 0.04)), raw, mat)]
    for k in range(seats):
        x = -w / 2 + arm + sw * (k + 0.5)
        parts.append(Part(cushion((sw - 0.02, d - 0.25, 0.14), (x, 0.1, seat - 0.05)), raw, mat))
        parts.append(Part(cushion((sw - 0.04, 0.18, 0.42), (x, -d / 2 + 0.2, seat + 0.2)), raw, mat))
    parts.append(Part(box((w, 0.15, 0.75), (0, -d / 2 + 0.075, 0.42)), raw, mat))
    for sx in (-1, 1):
        parts.append(Part(cushion((arm, d, 0.6), (sx * (w / 2 - arm / 2), 0, 0.32)), raw, mat))
    return Item("sofa", parts, (w / 2, d / 2), 0.8)


def bed(rng) -> Item:
    w, l = (rng.uniform(1.4, 1.8), rng.uniform(1.95, 2.1)) if rng.random() < 0.6 else (0.95, 2.0)
    frame, sheet = wood(rng), fabric(rng)
    h = rng.uniform(0.3, 0.4)
    parts = [Part(box((w, l, h), (0, 0, h / 2)), "bed", frame),
             Part(cushion((w - 0.04, l - 0.1, 0.22), (0, 0.03, h + 0.09)), "bed", sheet),
             Part(box((w + 0.04, 0.06, rng.uniform(0.9, 1.2)), (0, -l / 2, 0.5)), "bed", frame)]
    for k in range(1 if w < 1.2 else 2):
        x = 0 if w < 1.2 else (k - 0.5) * w / 2
        parts.append(Part(cushion((0.5, 0.3, 0.14), (x, -l / 2 + 0.25, h + 0.26)), "pillow", fabric(rng)))
    return Item("bed", parts, (w / 2, l / 2), h + 0.3)


def cabinet(rng, raw: str = "cabinet", height: Optional[float] = None, width: Optional[float] = None,
            depth: Optional[float] = None) -> Item:
    w, d = width or rng.uniform(0.5, 1.4), depth or rng.uniform(0.4, 0.6)
    h = height or rng.uniform(0.7, 2.0)
    body, door = (wood(rng), wood(rng)) if rng.random() < 0.5 else (paint(rng), paint(rng))
    parts = [Part(box((w, d - 0.02, h), (0, -0.01, h / 2)), raw, body)]
    n = max(1, int(round(w / 0.45)))
    dw = w / n
    for k in range(n):
        x = -w / 2 + dw * (k + 0.5)
        parts.append(Part(box((dw - 0.02, 0.02, h - 0.06), (x, d / 2 - 0.01, h / 2)), raw, door))
        parts.append(Part(rod(0.008, h * 0.55, h * 0.55 + 0.12, x + (dw / 2 - 0.06) * (1 if k % 2 else -1),
                              d / 2 + 0.01, 6), raw, metal(rng)))
    return Item(raw, parts, (w / 2, d / 2), h, top=h if h < 1.1 else None, top_half=(w / 2 - 0.05, d / 2 - 0.05))


def bookshelf(rng) -> Item:
    w, d, h = rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.4), rng.uniform(1.2, 2.1)
    mat = wood(rng)
    parts = [Part(box((w, 0.02, h), (0, -d / 2 + 0.01, h / 2)), "bookshelf", mat)]
    for sx in (-1, 1):
        parts.append(Part(box((0.025, d, h), (sx * (w / 2 - 0.0125), 0, h / 2)), "bookshelf", mat))
    shelves = int(h / 0.35)
    for k in range(shelves + 1):
        z = 0.02 + k * (h - 0.04) / shelves
        parts.append(Part(box((w - 0.05, d, 0.025), (0, 0, z)), "bookshelf", mat))
        if k < shelves:
            x = -w / 2 + 0.04
            while x < w / 2 - 0.08 and rng.random() < 0.93:
                bw, bh = rng.uniform(0.02, 0.05), rng.uniform(0.15, 0.28)
                parts.append(Part(box((bw, d * 0.8, bh), (x + bw / 2, 0, z + 0.0125 + bh / 2)), "book", fabric(rng)))
                x += bw + 0.003
    return Item("bookshelf", parts, (w / 2, d / 2), h)


def refrigerator(rng) -> Item:
    w, d, h = rng.uniform(0.6, 0.9), rng.uniform(0.6, 0.75), rng.uniform(1.6, 1.9)
    mat = ceramic(rng) if rng.random() < 0.6 else metal(rng)
    parts = [Part(box((w, d, h), (0, 0, h / 2)), "refrigerator", mat),
             Part(rod(0.012, h * 0.45, h * 0.85, w / 2 - 0.07, d / 2 + 0.03, 6), "refrigerator", metal(rng)),
             Part(box((w - 0.02, 0.01, 0.01), (0, d / 2 + 0.003, h * 0.62)), "refrigerator", metal(rng))]
    return Item("refrigerator", parts, (w / 2, d / 2), h)


def counter(rng, with_sink: bool = False, raw: str = "kitchen counter") -> Item:
    w, d, h = rng.uniform(1.2, 2.6), rng.uniform(0.55, 0.65), rng.uniform(0.86, 0.92)
    parts = list(cabinet(rng, "kitchen cabinets", h - 0.04, w, d).parts)
    parts.append(Part(box((w + 0.02, d + 0.02, 0.04), (0, 0, h - 0.02)), raw, paint(rng)))
    if with_sink:
        sx = rng.uniform(-w / 4, w / 4)
        parts.append(Part(box((0.5, 0.38, 0.03), (sx, 0.0, h + 0.005)), "sink", metal(rng)))
        parts.append(Part(rod(0.012, h, h + 0.25, sx, -0.22, 8), "sink", metal(rng)))
    return Item("counter", parts, (w / 2 + 0.01, d / 2 + 0.01), h, top=h, top_half=(w / 2 - 0.05, d / 2 - 0.05),
                tags={"sink": with_sink})


def toilet(rng) -> Item:
    mat = ceramic(rng)
    parts = [Part(rod(0.17, 0.0, 0.4, 0, 0.08, 16).apply_scale((1.0, 1.25, 1.0)), "toilet", mat),
             Part(box((0.42, 0.18, 0.38), (0, -0.24, 0.6)), "toilet", mat),
             Part(rod(0.19, 0.4, 0.43, 0, 0.08, 16).apply_scale((1.0, 1.2, 1.0)), "toilet", mat)]
    return Item("toilet", parts, (0.22, 0.33), 0.8)


def bathtub(rng) -> Item:
    w, l, h = rng.uniform(0.7, 0.8), rng.uniform(1.5, 1.75), rng.uniform(0.5, 0.6)
    mat = ceramic(rng)
    t = 0.07
    parts = [Part(box((w, l, 0.06), (0, 0, 0.03)), "bathtub", mat)]
    for sx in (-1, 1):
        parts.append(Part(box((t, l, h), (sx * (w / 2 - t / 2), 0, h / 2)), "bathtub", mat))
    for sy in (-1, 1):
        parts.append(Part(box((w, t, h), (0, sy * (l / 2 - t / 2), h / 2)), "bathtub", mat))
    return Item("bathtub", parts, (w / 2, l / 2), h, tags={"curtain": rng.random() < 0.7})


def otherfurniture(rng) -> Item:
    kind = ["ottoman", "trash can", "radiator", "bench"][int(rng.integers(4))]
    if kind == "ottoman":
        s = rng.uniform(0.4, 0.6)
        parts = [Part(cushion((s, s, 0.42), (0, 0, 0.21)), kind, fabric(rng))]
        return Item(kind, parts, (s / 2, s / 2), 0.42)
    if kind == "trash can":
        r = rng.uniform(0.12, 0.2)
        return Item(kind, [Part(rod(r, 0, rng.uniform(0.3, 0.6), 0, 0, 12), kind, metal(rng))], (r, r), 0.6)
    if kind == "radiator":
        w = rng.uniform(0.6, 1.2)
        parts = [Part(box((0.03, 0.08, 0.55), (x, 0, 0.4)), kind, paint(rng)) for x in np.arange(-w / 2, w / 2, 0.06)]
        return Item(kind, parts, (w / 2, 0.05), 0.7)
    w = rng.uniform(1.0, 1.5)
    mat = wood(rng)
    parts = [Part(box((w, 0.38, 0.05), (0, 0, 0.44)), kind, mat)]
    for sx in (-1, 1):
        parts.append(Part(box((0.05, 0.34, 0.42), (sx * (w / 2 - 0.06), 0, 0.21)), kind, mat))
    return Item(kind, parts, (w / 2, 0.19), 0.47)


# ------------------------------------------------------------------------------------------ clutter
def clutter(rng) -> Part:
    """One small object standing at the origin (on a surface at z = 0); labels ScanNet counts as other."""
    kind = int(rng.integers(6))
    mat = fabric(rng) if rng.random() < 0.5 else ceramic(rng)
    if kind == 0:
        r, h = rng.uniform(0.03, 0.05), rng.uniform(0.08, 0.12)
        return Part(rod(r, 0, h, 0, 0, 12), "cup", mat)
    if kind == 1:
        r, h = rng.uniform(0.03, 0.045), rng.uniform(0.2, 0.32)
        return Part(trimesh.util.concatenate([rod(r, 0, h * 0.7, 0, 0, 12), rod(r * 0.4, h * 0.7, h, 0, 0, 8)]),
                    "bottle", mat)
    if kind == 2:
        s = rng.uniform(0.08, 0.3, 3) * (1, 1, 0.6)
        return Part(box(s, (0, 0, s[2] / 2), yaw=rng.uniform(0, math.pi)), "box", fabric(rng))
    if kind == 3:
        r = rng.uniform(0.06, 0.12)
        return Part(creation.icosphere(2, r).apply_translation((0, 0, r)), "object", fabric(rng))
    if kind == 4:
        return Part(box((0.2, 0.14, rng.uniform(0.03, 0.08)), (0, 0, 0.03), yaw=rng.uniform(0, math.pi)), "book",
                    fabric(rng))
    h = rng.uniform(0.3, 0.5)
    return Part(trimesh.util.concatenate([rod(0.07, 0, 0.02, 0, 0, 12), rod(0.01, 0.02, h, 0, 0, 6),
                                          creation.cone(0.13, 0.15, sections=16).apply_translation((0, 0, h - 0.08))]),
                "lamp", paint(rng))


BUILDERS: dict[str, Callable] = {
    "table": table, "coffee table": lambda rng: table(rng, "coffee table"),
    "dining table": lambda rng: table(rng, "dining table"), "desk": desk, "chair": chair,
    "office chair": lambda rng: chair(rng, "office chair"), "sofa": sofa, "bed": bed, "cabinet": cabinet,
    "bookshelf": bookshelf, "refrigerator": refrigerator, "counter": counter,
    "sink counter": lambda rng: counter(rng, True), "vanity": lambda rng: counter(rng, True, "counter"),
    "toilet": toilet, "bathtub": bathtub, "otherfurniture": otherfurniture,
}  # fmt: skip


def build(kind: str, rng) -> Item:
    return BUILDERS[kind](rng)
