"""Windows (with curtains and radiators) and pictures on a room's walls, and the footprints that keep the
camera out of furniture: shared by rooms.py (the room) and rooms_groups.py (the room types)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gssplat_ros.data.procedural import geometry as g
from gssplat_ros.data.procedural.geometry import RAW


@dataclass
class Footprint:
    lo: np.ndarray  # [2] world xy min
    hi: np.ndarray  # [2] world xy max
    top: float  # height, m
    solid: bool = True  # False: clearance (door swing, chair pull-out) that solids must not enter


def add_window(room, curtains: float = 0.6, radiator: float = 0.3, small: bool = False) -> bool:
    rng, geo = room.rng, room.geo
    ww = rng.uniform(0.5, 0.8) if small else rng.uniform(0.8, 1.8)
    zb = rng.uniform(1.1, 1.3) if small else rng.uniform(0.75, 1.0)
    zt = min(room.h - 0.2, rng.uniform(1.9, 2.25))
    has_curtain = rng.random() < curtains
    cw = rng.uniform(0.25, 0.45)
    long_curtain = rng.random() < 0.6
    c_lo = 0.02 if long_curtain else zb - 0.15
    extra = cw if has_curtain else 0.0
    for _ in range(30):
        w = int(rng.integers(4))
        L = room.wall_length(w)
        if L < ww + 2 * extra + 0.3:
            continue
        s = rng.uniform(0.1 + ww / 2 + extra, L - 0.1 - ww / 2 - extra)
        if not room.span_free(w, s - ww / 2 - 0.08, s + ww / 2 + 0.08, zb - 0.1, zt + 0.1):
            continue
        if has_curtain and not (room.span_free(w, s - ww / 2 - cw, s - ww / 2, c_lo, zt + 0.2)
                                and room.span_free(w, s + ww / 2, s + ww / 2 + cw, c_lo, zt + 0.2)):
            continue
        f = room.wall_frame(w, s, 0.0)
        if has_curtain and long_curtain:
            lo, hi = room._rect(f, ww + 2 * cw, 0.12, 0.0, 0.12)
            if not room.floor_free(lo, hi):
                continue
            room.footprints.append(Footprint(lo, hi, zt))
        room.spans[w].append((s - ww / 2 - 0.08, s + ww / 2 + 0.08, zb - 0.1, zt + 0.1))
        frame_mat = g.plain(rng, g.pick(rng, [(0.93, 0.93, 0.92), (0.3, 0.3, 0.32), (0.55, 0.4, 0.28)]), 0.03)
        hgt = zt - zb
        with geo.object("window", RAW["window"]):
            geo.box(f, (0, 0.01, (zb + zt) / 2), (ww, 0.01, hgt), g.glass(rng))
            b = 0.05
            for sx in (-1, 1):
                geo.box(f, (sx * (ww / 2 + b / 2), 0.02, (zb + zt) / 2), (b, 0.04, hgt + 2 * b), frame_mat)
            for z in (zb - b / 2, zt + b / 2):
                geo.box(f, (0, 0.02, z), (ww, 0.04, b), frame_mat)
            if ww > 1.0 or rng.random() < 0.5:
                geo.box(f, (0, 0.02, (zb + zt) / 2), (0.035, 0.03, hgt), frame_mat)
            geo.box(f, (0, 0.06, zb - b - 0.01), (ww + 0.2, 0.12, 0.025), frame_mat)
        if has_curtain:
            mat = g.folds(rng)
            with geo.object("curtain", RAW["curtain"]):
                for sx in (-1, 1):
                    edge = s + sx * ww / 2
                    room.spans[w].append((edge - (cw if sx < 0 else 0), edge + (cw if sx > 0 else 0),
                                          c_lo, zt + 0.2))
                    geo.box(f, (sx * (ww / 2 + cw / 2 - 0.05), 0.09, (c_lo + zt + 0.15) / 2),
                            (cw, 0.04, zt + 0.15 - c_lo), mat)
        under = room._rect(f, ww * 0.8, 0.3, 0.0, 0.3)
        if radiator and rng.random() < radiator and zb > 0.75 and room.floor_free(*under):
            rw = ww * rng.uniform(0.6, 0.8)
            with geo.object("radiator", RAW["radiator"]):
                geo.box(f, (0, 0.08, 0.4), (rw, 0.1, 0.5), g.stripes(rng, (0.93, 0.93, 0.92), (0.7, 0.7, 0.7), 25.0, 0))
            room.footprints.append(Footprint(*room._rect(f, rw, 0.15, 0.0, 0.15), 0.65))
        return True
    return False


def add_pictures(room, n: int) -> None:
    rng, geo = room.rng, room.geo
    for _ in range(n):
        pw, ph = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8)
        zc = rng.uniform(1.35, 1.75)
        for _ in range(20):
            w = int(rng.integers(4))
            L = room.wall_length(w)
            if L < pw + 0.3:
                continue
            s = rng.uniform(0.15 + pw / 2, L - 0.15 - pw / 2)
            if not room.span_free(w, s - pw / 2, s + pw / 2, zc - ph / 2, zc + ph / 2, margin=0.15):
                continue
            room.spans[w].append((s - pw / 2, s + pw / 2, zc - ph / 2, zc + ph / 2))
            f = room.wall_frame(w, s, 0.0)
            b = rng.uniform(0.02, 0.06)
            frame_mat = g.wood(rng) if rng.random() < 0.4 else g.plain(
                rng, g.pick(rng, [(0.08, 0.08, 0.08), (0.8, 0.65, 0.3), (0.95, 0.95, 0.95)]), 0.03)
            with geo.object("picture", RAW["picture"] if rng.random() < 0.7 else RAW["poster"]):
                geo.box(f, (0, 0.015, zc), (pw, 0.03, ph), frame_mat)
                geo.box(f, (0, 0.035, zc), (pw - 2 * b, 0.01, ph - 2 * b), g.canvas(rng))
            break
