"""Furniture groups and the room types built from them (see rooms.build_room)."""

from __future__ import annotations

import math

from gssplat_ros.data.procedural import furniture as fu
from gssplat_ros.data.procedural import geometry as g
from gssplat_ros.data.procedural import openings as rooms
from gssplat_ros.data.procedural.geometry import RAW, Frame2D


def _sub(f: Frame2D, x: float, y: float, dyaw: float = 0.0) -> Frame2D:
    p = f.to_world((x, y, 0.0))
    return Frame2D(float(p[0]), float(p[1]), f.yaw + dyaw)


# ------------------------------------------------------------------------------------------ groups
def bed_group(room) -> bool:
    rng, geo = room.rng, room.geo
    double = rng.random() < 0.6
    bw = rng.uniform(1.4, 1.8) if double else rng.uniform(0.9, 1.0)
    bl = rng.uniform(1.95, 2.1)
    ns = rng.random() < 0.7
    r = room.place_wall(bw + (1.0 if ns else 0.0), bl, 1.2, clearance=0.5)
    if r is None:
        return False
    _, _, f = r
    fu.bed(geo, rng, f, bw, bl)
    if ns:
        for sx in (-1, 1):
            nf = _sub(f, sx * (bw / 2 + 0.26), -bl / 2 + 0.205)
            _, _, h = fu.nightstand(geo, rng, nf)
            if rng.random() < 0.4:
                fu.lamp(geo, rng, nf, z=h)
    return True


def desk_group(room, office_chair=None) -> bool:
    rng, geo = room.rng, room.geo
    w, d = rng.uniform(1.0, 1.6), rng.uniform(0.6, 0.75)
    r = room.place_wall(w, d, 0.77, clearance=0.75)
    if r is None:
        return False
    _, _, f = r
    _, _, h = fu.desk(geo, rng, f, w, d)
    fu.chair(geo, rng, _sub(f, rng.uniform(-0.2, 0.2) * w, d / 2 + rng.uniform(0.05, 0.25),
                            math.pi + rng.uniform(-0.3, 0.3)), office=office_chair)
    if rng.random() < 0.6:
        fu.monitor(geo, rng, _sub(f, rng.uniform(-0.2, 0.2) * w, -d / 2 + 0.15), h)
    if rng.random() < 0.3:
        fu.lamp(geo, rng, _sub(f, (w / 2 - 0.15) * (1 if rng.random() < 0.5 else -1), -d / 2 + 0.15), z=h)
    return True


def sofa_group(room, armchairs: int = 1) -> bool:
    rng, geo = room.rng, room.geo
    sw, sd = rng.uniform(1.6, 2.4), 0.95
    ct_w, ct_d = rng.uniform(0.8, 1.3), rng.uniform(0.5, 0.7)
    gap = rng.uniform(0.35, 0.5)
    r = room.place_wall(sw, sd + gap + ct_d, 0.92, clearance=0.3)
    if r is None:
        return False
    _, _, f = r
    depth = sd + gap + ct_d
    fu.sofa(geo, rng, _sub(f, 0.0, -depth / 2 + sd / 2), sw)
    fu.table(geo, rng, _sub(f, rng.uniform(-0.1, 0.1), depth / 2 - ct_d / 2), ct_w, ct_d,
             h=rng.uniform(0.38, 0.46), name="coffee table")
    for _ in range(armchairs):
        af = room.place_free(0.9, 0.9, 0.9, wall_margin=0.3, yaw_jitter=0.5)
        if af is not None:
            fu.sofa(geo, rng, af, rng.uniform(0.75, 0.95), name="armchair")
    return True


def dining_group(room, office: bool = False) -> bool:
    rng, geo = room.rng, room.geo
    round_top = rng.random() < 0.25
    tw = rng.uniform(0.9, 1.2) if round_top else rng.uniform(1.0, 1.8)
    td = tw if round_top else rng.uniform(0.8, 1.0)
    f = room.place_free(tw + 0.9, td + 1.1, 0.76, wall_margin=0.3)
    if f is None:
        return False
    fu.table(geo, rng, f, tw, td, h=rng.uniform(0.72, 0.77), round_top=round_top,
             name="table" if rng.random() < 0.5 else "dining table")
    n = max(1, int(tw / 0.6))
    for side in (-1, 1):
        for i in range(n):
            if rng.random() < 0.25:
                continue
            x = -tw / 2 + tw * (i + 0.5) / n + rng.uniform(-0.05, 0.05)
            y = side * (td / 2 + rng.uniform(0.02, 0.25))
            fu.chair(geo, rng, _sub(f, x, y, (math.pi if side > 0 else 0.0) + rng.uniform(-0.2, 0.2)),
                     office=office or None)
    if not round_top and rng.random() < 0.4:
        fu.chair(geo, rng, _sub(f, tw / 2 + 0.15, 0.0, -math.pi / 2), office=office or None)
    return True


def kitchen_run(room, fridge: bool = True, uppers: bool = True) -> bool:
    rng, geo = room.rng, room.geo
    d = 0.65
    for _ in range(3):
        run = rng.uniform(1.8, 3.4)
        r = room.place_wall(run, d, 2.2 if uppers or fridge else 0.95, clearance=0.8)
        if r is not None:
            break
    else:
        return False
    _, _, f = r
    back = -d / 2
    x0, x1 = -run / 2, run / 2
    if fridge:
        fw = 0.75
        end = 1 if rng.random() < 0.5 else -1
        fu.refrigerator(geo, rng, _sub(f, end * (run / 2 - fw / 2), back + 0.34))
        if end > 0:
            x1 -= fw + 0.02
        else:
            x0 += fw + 0.02
    mat = g.furniture_surface(rng, axis=1, door_w=rng.uniform(0.4, 0.6))
    n = max(1, int(round((x1 - x0) / 0.8)))
    seg = (x1 - x0) / n
    for i in range(n):
        fu.cabinet_body(geo, rng, _sub(f, x0 + seg * (i + 0.5), back + 0.3), seg - 0.004, 0.6, 0.86,
                        "kitchen cabinet", mat=mat)
    with geo.object("counter", RAW["kitchen counter"] if rng.random() < 0.6 else RAW["counter"]):
        geo.box(f, ((x0 + x1) / 2, back + 0.315, 0.88), (x1 - x0 + 0.02, 0.63, 0.04), g.marble(rng))
    if x1 - x0 > 0.9:
        xs = rng.uniform(x0 + 0.4, x1 - 0.4)
        fu.sink_basin(geo, rng, _sub(f, xs, back + 0.33), 0.9, w=min(0.7, x1 - x0 - 0.2), d=0.42, kitchen=True)
    if uppers and rng.random() < 0.8:
        umat = mat if rng.random() < 0.7 else g.furniture_surface(rng, axis=1, door_w=rng.uniform(0.4, 0.6))
        for i in range(n):
            fu.cabinet_body(geo, rng, _sub(f, x0 + seg * (i + 0.5), back + 0.175), seg - 0.004, 0.35,
                            rng.uniform(0.6, 0.75), "kitchen cabinet", z0=1.45, mat=umat)
    return True


def bathroom_set(room) -> None:
    rng, geo = room.rng, room.geo
    if rng.random() < 0.85:
        length, w = rng.uniform(1.45, 1.7), rng.uniform(0.7, 0.8)
        r = room.place_wall(length, w, 2.0, clearance=0.35)
        if r is not None:
            _, _, f = r
            fu.bathtub(geo, rng, f, length, w)
            fu.shower_curtain(geo, rng, _sub(f, 0.0, w / 2 - 0.04), length, rng.uniform(1.85, 2.0))
    r = room.place_wall(0.5, 0.72, 0.82, clearance=0.45)
    if r is not None:
        fu.toilet(geo, rng, r[2])
    if rng.random() < 0.55:
        vw = rng.uniform(0.6, 1.1)
        r = room.place_wall(vw, 0.5, 0.92, clearance=0.5)
        if r is not None:
            fu.vanity(geo, rng, r[2], vw)
    else:
        r = room.place_wall(0.55, 0.45, 0.92, clearance=0.5)
        if r is not None:
            fu.pedestal_sink(geo, rng, r[2])
    if r is not None and rng.random() < 0.6:
        w, s, _ = r
        zc = rng.uniform(1.45, 1.6)
        if room.span_free(w, s - 0.3, s + 0.3, zc - 0.35, zc + 0.35, margin=0.02):
            room.spans[w].append((s - 0.3, s + 0.3, zc - 0.35, zc + 0.35))
            with geo.object("mirror", RAW["mirror"]):
                geo.box(room.wall_frame(w, s, 0.0), (0, 0.01, zc), (0.55, 0.02, 0.65),
                        g.plain(rng, (0.75, 0.8, 0.85), 0.15, 3.0))
    if rng.random() < 0.4:
        cw = rng.uniform(0.45, 0.8)
        z0 = rng.uniform(1.25, 1.4)
        r = room.place_wall(cw, 0.3, 0.6, z0=z0)
        if r is not None:
            fu.cabinet_body(geo, rng, r[2], cw, 0.3, 0.6, "cabinet", z0=z0)


def wall_item(room, builder, width, depth, height, clearance=0.3) -> bool:
    r = room.place_wall(width, depth, height, clearance=clearance)
    if r is None:
        return False
    builder(r[2])
    return True


def bookshelf(room) -> bool:
    rng = room.rng
    w, d, h = rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.38), rng.uniform(1.5, 2.0)
    return wall_item(room, lambda f: fu.bookshelf(room.geo, rng, f, w, d, h), w, d, h)


def cabinet(room, name="cabinet") -> bool:
    rng = room.rng
    if name == "file cabinet":
        w, d, h = rng.uniform(0.45, 0.9), 0.55, rng.uniform(0.7, 1.3)
        return wall_item(room, lambda f: fu.cabinet_body(room.geo, rng, f, w, d, h, name, door_w=w,
                                                         door_h=rng.uniform(0.25, 0.35)), w, d, h)
    w, d, h = rng.uniform(0.6, 1.6), rng.uniform(0.4, 0.55), rng.uniform(0.7, 1.0)
    if rng.random() < 0.25:
        h = rng.uniform(1.6, 2.0)
    return wall_item(room, lambda f: fu.cabinet_body(room.geo, rng, f, w, d, h, name), w, d, h)


def wardrobe(room) -> bool:
    rng = room.rng
    w = rng.uniform(0.9, 1.8)
    return wall_item(room, lambda f: fu.wardrobe(room.geo, rng, f, w), w, 0.62, 2.2, clearance=0.5)


def tv(room) -> bool:
    rng = room.rng
    w = rng.uniform(1.0, 1.8)
    return wall_item(room, lambda f: fu.tv_stand(room.geo, rng, f, w), w, 0.42, 1.4, clearance=0.5)


def other_furniture(room) -> None:
    rng, geo = room.rng, room.geo
    kind = rng.integers(3)
    if kind == 0:
        f = room.place_free(0.6, 0.6, 0.45, wall_margin=0.4)
        if f is not None:
            fu.ottoman(geo, rng, f)
    elif kind == 1:
        w = rng.uniform(0.8, 1.4)
        wall_item(room, lambda f: fu.bench(geo, rng, f, w), w, 0.38, 0.45)
    else:
        wall_item(room, lambda f: fu.trash_can(geo, rng, f), 0.36, 0.36, 0.34, clearance=0.0)


def props(room, plants: int = 1, boxes: float = 0.3, floor_lamp: float = 0.3, rug: float = 0.4) -> None:
    rng, geo = room.rng, room.geo
    for _ in range(plants):
        wall_item(room, lambda f: fu.plant(geo, rng, f), 0.45, 0.45, 1.0, clearance=0.0)
    if rng.random() < boxes:
        wall_item(room, lambda f: fu.cardboard_box(geo, rng, f), 0.5, 0.5, 0.5, clearance=0.0)
    if rng.random() < floor_lamp:
        wall_item(room, lambda f: fu.lamp(geo, rng, f, floor=True), 0.4, 0.4, 1.8, clearance=0.0)
    if rng.random() < rug:
        rw, rd = rng.uniform(1.2, 2.4), rng.uniform(0.8, 1.8)
        if room.lx > rw + 1.0 and room.ly > rd + 1.0:
            x, y = rng.uniform(0.5 + rw / 2, room.lx - 0.5 - rw / 2), rng.uniform(0.5 + rd / 2, room.ly - 0.5 - rd / 2)
            mat = g.fabric(rng, scale=12.0) if rng.random() < 0.5 else g.stripes(
                rng, g.pick(rng, g.FABRICS), g.pick(rng, g.BEDDING), rng.uniform(3.0, 8.0))
            with geo.object("rug", RAW["rug"], shadow=False):
                geo.box(Frame2D(x, y, float(rng.integers(2)) * math.pi / 2), (0, 0, 0.004), (rw, rd, 0.008), mat)


# ------------------------------------------------------------------------------------------ rooms
def _maybe(rng, p: float) -> bool:
    return rng.random() < p


def bedroom(room) -> None:
    rng = room.rng
    bed_group(room)
    for _ in range(1 + int(_maybe(rng, 0.4))):
        rooms.add_window(room, curtains=0.8)
    if _maybe(rng, 0.6):
        wardrobe(room)
    if _maybe(rng, 0.5):
        cabinet(room)
    if _maybe(rng, 0.5):
        desk_group(room)
    if _maybe(rng, 0.35):
        bookshelf(room)
    if _maybe(rng, 0.4):
        other_furniture(room)
    if _maybe(rng, 0.3):
        f = room.place_free(0.55, 0.55, 0.95, wall_margin=0.4, yaw_jitter=0.6)
        if f is not None:
            fu.chair(room.geo, rng, f)
    if _maybe(rng, 0.2):
        tv(room)
    rooms.add_pictures(room, int(rng.integers(1, 4)))
    props(room, plants=int(rng.integers(0, 2)))


def living(room) -> None:
    rng = room.rng
    sofa_group(room, armchairs=int(rng.integers(0, 3)))
    for _ in range(1 + int(_maybe(rng, 0.5))):
        rooms.add_window(room, curtains=0.7)
    if _maybe(rng, 0.7):
        tv(room)
    for _ in range(int(rng.integers(0, 3))):
        bookshelf(room)
    if _maybe(rng, 0.5):
        cabinet(room)
    if _maybe(rng, 0.4):
        dining_group(room)
    if _maybe(rng, 0.45):
        other_furniture(room)
    if _maybe(rng, 0.2):
        desk_group(room)
    rooms.add_pictures(room, int(rng.integers(2, 5)))
    props(room, plants=int(rng.integers(1, 3)), floor_lamp=0.5, rug=0.5)


def kitchen(room) -> None:
    rng = room.rng
    kitchen_run(room)
    rooms.add_window(room, curtains=0.3)
    if _maybe(rng, 0.3):
        kitchen_run(room, fridge=False)
    if _maybe(rng, 0.8):
        dining_group(room)
    if _maybe(rng, 0.35):
        cabinet(room)
    if _maybe(rng, 0.6):
        wall_item(room, lambda f: fu.trash_can(room.geo, rng, f), 0.36, 0.36, 0.34, clearance=0.0)
    if _maybe(rng, 0.15):
        bookshelf(room)
    rooms.add_pictures(room, int(rng.integers(0, 3)))
    props(room, plants=int(rng.integers(0, 2)), rug=0.15)


def office(room) -> None:
    rng = room.rng
    area = room.lx * room.ly
    for _ in range(1 + int(area > 14) + int(area > 22)):
        desk_group(room, office_chair=_maybe(rng, 0.8))
    for _ in range(1 + int(_maybe(rng, 0.5))):
        rooms.add_window(room, curtains=0.35)
    for _ in range(1 + int(_maybe(rng, 0.5))):
        bookshelf(room)
    for _ in range(int(rng.integers(1, 3))):
        cabinet(room, "file cabinet" if _maybe(rng, 0.6) else "cabinet")
    if _maybe(rng, 0.4):
        dining_group(room, office=True)
    if _maybe(rng, 0.25):
        sofa_group(room, armchairs=0)
    if _maybe(rng, 0.5):
        other_furniture(room)
    rooms.add_pictures(room, int(rng.integers(1, 4)))
    props(room, plants=int(rng.integers(0, 3)), boxes=0.4, rug=0.1)


def bathroom(room) -> None:
    rng = room.rng
    bathroom_set(room)
    if _maybe(rng, 0.6):
        rooms.add_window(room, curtains=0.25, radiator=0.0, small=True)
    if _maybe(rng, 0.5):
        wall_item(room, lambda f: fu.trash_can(room.geo, rng, f), 0.36, 0.36, 0.34, clearance=0.0)
    if _maybe(rng, 0.3):
        cabinet(room)
    rooms.add_pictures(room, int(rng.integers(0, 2)))


def studio(room) -> None:
    rng = room.rng
    kitchen_run(room, uppers=_maybe(rng, 0.6))
    bed_group(room)
    sofa_group(room, armchairs=int(rng.integers(0, 2)))
    for _ in range(2):
        rooms.add_window(room, curtains=0.6)
    if _maybe(rng, 0.6):
        dining_group(room)
    if _maybe(rng, 0.4):
        desk_group(room)
    if _maybe(rng, 0.4):
        bookshelf(room)
    if _maybe(rng, 0.4):
        wardrobe(room)
    if _maybe(rng, 0.3):
        other_furniture(room)
    rooms.add_pictures(room, int(rng.integers(2, 4)))
    props(room, plants=int(rng.integers(0, 2)), rug=0.4)


__all__ = ["bedroom", "living", "kitchen", "office", "bathroom", "studio"]
