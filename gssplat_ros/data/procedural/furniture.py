"""Furniture and props as compositions of boxes, cylinders and spheres.

Every builder takes (geo, rng, frame, ...) with the frame's origin at the footprint centre on the floor,
local x = width, local y = depth with the back at -d/2 (against a wall) and the front at +d/2, z up;
and returns the footprint (w, d) and height it occupies.
"""

from __future__ import annotations

from gssplat_ros.data.procedural import geometry as g
from gssplat_ros.data.procedural.geometry import RAW, Frame2D, SceneGeometry


def _legs(geo, f, w, d, h, mat, inset=0.04, r=0.022, round_legs=True):
    for sx in (-1, 1):
        for sy in (-1, 1):
            c = (sx * (w / 2 - inset), sy * (d / 2 - inset), h / 2)
            if round_legs:
                geo.cyl(f, c, r, h, mat)
            else:
                geo.box(f, c, (2 * r, 2 * r, h), mat)


def table(geo: SceneGeometry, rng, f: Frame2D, w, d, h=0.75, name="table", round_top=False):
    top = g.wood(rng) if rng.random() < 0.7 else g.plain(rng, g.pick(rng, g.FURNITURE_PAINT), 0.04)
    legs = g.metal(rng, g.pick(rng, [(0.2, 0.2, 0.2), (0.75, 0.75, 0.76)])) if rng.random() < 0.4 else top
    with geo.object(name, RAW[name]):
        if round_top:
            r = min(w, d) / 2
            geo.cyl(f, (0, 0, h - 0.02), r, 0.04, top)
            geo.cyl(f, (0, 0, (h - 0.04) / 2), 0.05, h - 0.04, legs)
            geo.cyl(f, (0, 0, 0.015), r * 0.45, 0.03, legs)
        else:
            geo.box(f, (0, 0, h - 0.02), (w, d, 0.04), top)
            _legs(geo, f, w, d, h - 0.04, legs, r=0.025, round_legs=rng.random() < 0.5)
    return w, d, h


def chair(geo, rng, f: Frame2D, office=None):
    """A chair whose front (seat edge) faces +y."""
    office = rng.random() < 0.3 if office is None else office
    w, d = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5)
    seat_h = rng.uniform(0.43, 0.48)
    if office:
        cloth = g.fabric(rng, [(0.15, 0.15, 0.17), (0.25, 0.27, 0.32), (0.35, 0.2, 0.18), (0.3, 0.3, 0.3)])
        base = g.metal(rng, (0.25, 0.25, 0.27))
        with geo.object("office chair", RAW["office chair"]):
            geo.box(f, (0, 0, seat_h), (w, d, 0.08), cloth)
            geo.box(f, (0, -d / 2 + 0.03, seat_h + 0.33), (w * 0.95, 0.06, 0.5), cloth)
            geo.cyl(f, (0, 0, seat_h / 2), 0.03, seat_h - 0.04, base)
            geo.box(f, (0, 0, 0.04), (0.6, 0.06, 0.04), base)
            geo.box(f, (0, 0, 0.04), (0.06, 0.6, 0.04), base)
        return w, d, seat_h + 0.6
    frame_mat = g.wood(rng) if rng.random() < 0.6 else g.plain(
        rng, g.pick(rng, [(0.15, 0.15, 0.15), (0.9, 0.9, 0.88), (0.7, 0.2, 0.15), (0.25, 0.4, 0.6)]), 0.04)
    seat_mat = frame_mat if rng.random() < 0.6 else g.fabric(rng)
    back_h = rng.uniform(0.35, 0.5)
    with geo.object("chair", RAW["chair"]):
        geo.box(f, (0, 0, seat_h - 0.025), (w, d, 0.05), seat_mat)
        _legs(geo, f, w, d, seat_h - 0.05, frame_mat, inset=0.03, r=0.018, round_legs=rng.random() < 0.5)
        geo.box(f, (0, -d / 2 + 0.02, seat_h + back_h / 2), (w, 0.04, back_h), frame_mat)
    return w, d, seat_h + back_h


def sofa(geo, rng, f: Frame2D, w, name=None):
    d, mat = rng.uniform(0.85, 1.0), g.fabric(rng)
    cushion = mat if rng.random() < 0.6 else g.fabric(rng)
    base_h, seat_h, back_h = 0.12, rng.uniform(0.42, 0.48), rng.uniform(0.8, 0.92)
    arm = rng.uniform(0.12, 0.22)
    raw = RAW[name] if name else (RAW["sofa"] if rng.random() < 0.5 else RAW["couch"])
    with geo.object(name or "sofa", raw):
        geo.box(f, (0, 0.0, base_h + (seat_h - 0.12 - base_h) / 2), (w, d, seat_h - 0.12 - base_h), mat)
        n = max(1, int(round((w - 2 * arm) / 0.65)))
        cw = (w - 2 * arm) / n
        for i in range(n):
            x = -w / 2 + arm + cw * (i + 0.5)
            geo.box(f, (x, 0.1, seat_h - 0.06), (cw - 0.015, d - 0.25, 0.12), cushion)
        geo.box(f, (0, -d / 2 + 0.1, (seat_h - 0.12 + back_h) / 2), (w - 2 * arm, 0.2, back_h - seat_h + 0.12), mat)
        for sx in (-1, 1):
            geo.box(f, (sx * (w / 2 - arm / 2), 0, (base_h + seat_h + 0.18) / 2), (arm, d, seat_h + 0.18 - base_h), mat)
        _legs(geo, f, w, d, base_h, g.wood(rng), inset=0.06, r=0.02)
    return w, d, back_h


def bed(geo, rng, f: Frame2D, w, length):
    frame_mat = g.wood(rng) if rng.random() < 0.7 else g.plain(rng, g.pick(rng, g.FURNITURE_PAINT))
    sheet = g.fabric(rng, g.BEDDING)
    duvet = g.fabric(rng, g.BEDDING)
    mat_top = rng.uniform(0.5, 0.62)
    with geo.object("bed", RAW["bed"]):
        geo.box(f, (0, 0, 0.25), (w, length, 0.3), frame_mat)
        _legs(geo, f, w, length, 0.1, frame_mat, inset=0.05, r=0.03, round_legs=False)
        geo.box(f, (0, 0, (0.4 + mat_top) / 2), (w - 0.05, length - 0.05, mat_top - 0.4), sheet)
        dl = length * rng.uniform(0.6, 0.75)
        geo.box(f, (0, length / 2 - dl / 2 + 0.01, mat_top + 0.02), (w + 0.02, dl, 0.05), duvet)
        hb = rng.uniform(0.9, 1.2)
        head = frame_mat if rng.random() < 0.6 else g.fabric(rng)
        geo.box(f, (0, -length / 2 + 0.03, hb / 2), (w + 0.04, 0.06, hb), head)
    n = 1 if w < 1.2 else 2
    pw = (w - 0.2) / n
    for i in range(n):
        with geo.object("pillow", RAW["pillow"], shadow=False):
            geo.box(f, (-w / 2 + 0.1 + pw * (i + 0.5), -length / 2 + 0.28, mat_top + 0.06), (pw - 0.06, 0.35, 0.12),
                    g.fabric(rng, g.BEDDING))
    return w, length, 1.0


def cabinet_body(geo, rng, f, w, d, h, name, z0=0.0, door_w=None, door_h=0.0, mat=None):
    mat = mat or g.furniture_surface(rng, axis=1, door_w=door_w or rng.uniform(0.35, 0.6), door_h=door_h)
    handle = g.metal(rng, (0.75, 0.75, 0.77) if rng.random() < 0.6 else (0.2, 0.2, 0.2))
    with geo.object(name, RAW[name]):
        geo.box(f, (0, 0, z0 + h / 2), (w, d, h), mat)
        n = max(1, int(round(w / (1.0 / mat.scale)))) if mat.kind == g.rc.MAT_PANEL else 1
        for i in range(n):
            x = -w / 2 + w * (i + 0.5) / n + (0.12 if i % 2 == 0 else -0.12) * min(1.0, w / n / 0.4)
            geo.box(f, (x, d / 2 + 0.01, z0 + h * 0.75 if z0 < 1.0 else z0 + h * 0.2), (0.02, 0.02, 0.12), handle)
    return w, d, z0 + h


def bookshelf(geo, rng, f, w, d, h):
    frame_mat = g.wood(rng, axis=2) if rng.random() < 0.75 else g.plain(rng, g.pick(rng, g.FURNITURE_PAINT))
    t = 0.025
    n = max(3, int(h / 0.36))
    with geo.object("bookshelf", RAW["bookshelf"]):
        for sx in (-1, 1):
            geo.box(f, (sx * (w / 2 - t / 2), 0, h / 2), (t, d, h), frame_mat)
        geo.box(f, (0, -d / 2 + 0.005, h / 2), (w - 2 * t, 0.01, h), frame_mat)
        step = (h - t) / n
        for i in range(n + 1):
            geo.box(f, (0, 0, i * step + t / 2), (w - 2 * t, d, t), frame_mat)
        for i in range(n):
            if rng.random() < 0.85:
                fill = rng.uniform(0.5, 1.0) * (w - 2 * t)
                x0 = -w / 2 + t + rng.uniform(0, (w - 2 * t) - fill)
                bh = step - t - 0.02
                geo.box(f, (x0 + fill / 2, -d / 2 + 0.01 + (d - 0.06) / 2, i * step + t + bh / 2),
                        (fill, d - 0.06, bh), g.books(rng))
    return w, d, h


def desk(geo, rng, f, w, d):
    top = g.wood(rng) if rng.random() < 0.6 else g.plain(rng, g.pick(rng, g.FURNITURE_PAINT), 0.04)
    h = rng.uniform(0.72, 0.77)
    with geo.object("desk", RAW["desk"]):
        geo.box(f, (0, 0, h - 0.015), (w, d, 0.03), top)
        side = 1 if rng.random() < 0.5 else -1
        dw = rng.uniform(0.35, 0.45)
        drawers = g.panel(rng, top.a, axis=1, door_w=dw, door_h=1.0 / rng.uniform(3.5, 6.0))
        geo.box(f, (side * (w / 2 - dw / 2 - 0.01), 0, (h - 0.03) / 2), (dw, d - 0.04, h - 0.03), drawers)
        geo.box(f, (-side * (w / 2 - 0.03), 0, (h - 0.03) / 2), (0.03, d - 0.04, h - 0.03), top)
        geo.box(f, (0, -d / 2 + 0.05, h * 0.55), (w - 0.1, 0.02, h * 0.5), top)
    return w, d, h


def monitor(geo, rng, f, z):
    w = rng.uniform(0.45, 0.65)
    black = g.plain(rng, (0.08, 0.08, 0.09), 0.05)
    with geo.object("monitor", RAW["monitor"]):
        geo.box(f, (0, 0, z + 0.2 + 0.17), (w, 0.03, w * 0.58), black)
        geo.box(f, (0, -0.04, z + 0.1), (0.05, 0.04, 0.2), black)
        geo.box(f, (0, -0.02, z + 0.01), (0.22, 0.16, 0.02), black)


def lamp(geo, rng, f, z=0.0, floor=False):
    base = g.metal(rng, g.pick(rng, [(0.2, 0.2, 0.2), (0.8, 0.7, 0.4), (0.85, 0.85, 0.85)]))
    shade = g.plain(rng, g.pick(rng, [(0.95, 0.92, 0.82), (0.9, 0.9, 0.9), (0.85, 0.75, 0.6)]), 0.03)
    pole = 1.45 if floor else 0.3
    with geo.object("lamp", RAW["lamp"], shadow=False):
        geo.cyl(f, (0, 0, z + 0.01), 0.1 if floor else 0.07, 0.02, base)
        geo.cyl(f, (0, 0, z + pole / 2), 0.012, pole, base)
        geo.cyl(f, (0, 0, z + pole + 0.1), 0.2 if floor else 0.13, 0.2, shade)


def plant(geo, rng, f, z=0.0, big=True):
    pot = g.plain(rng, g.pick(rng, [(0.7, 0.4, 0.25), (0.9, 0.9, 0.88), (0.25, 0.25, 0.27)]), 0.05)
    leaf = g.fabric(rng, [(0.2, 0.42, 0.18), (0.28, 0.5, 0.25), (0.18, 0.35, 0.2)], scale=25.0)
    r = 0.13 if big else 0.07
    with geo.object("plant", RAW["plant"], shadow=False):
        geo.cyl(f, (0, 0, z + r * 1.1), r, r * 2.2, pot)
        geo.sphere(f, (0, 0, z + r * 2.2 + r * 1.3), r * 1.6, leaf)
        if big:
            geo.sphere(f, (r * 0.5, 0.05, z + r * 2.2 + r * 3.0), r * 1.1, leaf)


def cardboard_box(geo, rng, f, z=0.0):
    s = rng.uniform(0.25, 0.5, 3)
    with geo.object("box", RAW["box"]):
        geo.box(f, (0, 0, z + s[2] / 2), s, g.plain(rng, (0.66, 0.5, 0.33), 0.08, 6.0))
    return s[0], s[1], s[2]


def nightstand(geo, rng, f):
    w, d, h = rng.uniform(0.4, 0.55), 0.4, rng.uniform(0.45, 0.6)
    mat = g.furniture_surface(rng, axis=1, door_w=w, door_h=h / 2)
    with geo.object("nightstand", RAW["nightstand"]):
        geo.box(f, (0, 0, h / 2), (w, d, h), mat)
    return w, d, h


def tv_stand(geo, rng, f, w):
    d, h = 0.42, rng.uniform(0.4, 0.55)
    mat = g.furniture_surface(rng, axis=1, door_w=w / 3)
    with geo.object("tv stand", RAW["tv stand"]):
        geo.box(f, (0, 0, h / 2 + 0.05), (w, d, h - 0.1 + 0.05), mat)
        _legs(geo, f, w, d, 0.05, g.metal(rng, (0.2, 0.2, 0.2)), inset=0.05, r=0.015)
    tw = min(w * 0.9, rng.uniform(0.9, 1.4))
    with geo.object("tv", RAW["tv"]):
        black = g.plain(rng, (0.05, 0.05, 0.06), 0.03)
        geo.box(f, (0, -0.05, h + 0.1 + tw * 0.28), (tw, 0.05, tw * 0.56), black)
        geo.box(f, (0, -0.05, h + 0.05), (0.25, 0.18, 0.1), black)
    return w, d, h + 0.1 + tw * 0.56


def ottoman(geo, rng, f):
    mat = g.fabric(rng)
    with geo.object("ottoman", RAW["ottoman"]):
        if rng.random() < 0.5:
            geo.cyl(f, (0, 0, 0.22), rng.uniform(0.22, 0.3), 0.44, mat)
        else:
            geo.box(f, (0, 0, 0.22), (rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.6), 0.44), mat)
    return 0.6, 0.6, 0.44


def bench(geo, rng, f, w):
    mat = g.wood(rng)
    with geo.object("bench", RAW["bench"]):
        geo.box(f, (0, 0, 0.43), (w, 0.38, 0.05), mat)
        for sx in (-1, 1):
            geo.box(f, (sx * (w / 2 - 0.06), 0, 0.2), (0.05, 0.34, 0.4), mat)
    return w, 0.38, 0.45


def trash_can(geo, rng, f):
    colors = [(0.2, 0.5, 0.3), (0.3, 0.3, 0.3), (0.9, 0.9, 0.9)]
    mat = g.metal(rng) if rng.random() < 0.5 else g.plain(rng, g.pick(rng, colors))
    with geo.object("trash can", RAW["trash can"]):
        geo.cyl(f, (0, 0, 0.17), rng.uniform(0.12, 0.18), 0.34, mat)
    return 0.36, 0.36, 0.34


def wardrobe(geo, rng, f, w):
    d, h = rng.uniform(0.55, 0.62), rng.uniform(1.9, 2.2)
    mat = g.furniture_surface(rng, axis=1, door_w=w / max(2, round(w / 0.5)))
    with geo.object("wardrobe", RAW["wardrobe"]):
        geo.box(f, (0, 0, h / 2 + 0.05), (w, d, h - 0.05), mat)
        geo.box(f, (0, -0.02, 0.03), (w - 0.04, d - 0.04, 0.06), g.plain(rng, (0.2, 0.2, 0.2)))
        for sx in (-1, 1):
            geo.box(f, (sx * 0.04, d / 2 + 0.01, h * 0.55), (0.02, 0.02, 0.3), g.metal(rng))
    return w, d, h


def refrigerator(geo, rng, f):
    w, d, h = rng.uniform(0.6, 0.8), 0.68, rng.uniform(1.75, 1.95)
    body = g.metal(rng, (0.74, 0.75, 0.77), axis=2) if rng.random() < 0.5 else g.plain(
        rng, g.pick(rng, [(0.93, 0.93, 0.92), (0.2, 0.2, 0.22), (0.85, 0.86, 0.86)]), 0.02)
    split = rng.uniform(0.55, 0.7) * h
    with geo.object("refrigerator", RAW["refrigerator"]):
        geo.box(f, (0, 0, split / 2), (w, d, split - 0.006), body)
        geo.box(f, (0, 0, (split + h) / 2), (w, d, h - split - 0.006), body)
        dark = g.plain(rng, (0.1, 0.1, 0.1))
        geo.box(f, (0, -0.01, split), (w - 0.02, d - 0.04, 0.012), dark)
        for z0, z1 in ((split - 0.5, split - 0.08), (split + 0.08, split + 0.45)):
            geo.box(f, (w / 2 - 0.06, d / 2 + 0.03, (z0 + z1) / 2), (0.025, 0.03, z1 - z0), g.metal(rng))
    return w, d, h


def toilet(geo, rng, f):
    ceramic = g.plain(rng, g.CERAMIC, 0.02, j=0.015)
    with geo.object("toilet", RAW["toilet"]):
        geo.box(f, (0, -0.26, 0.6), (0.42, 0.18, 0.4), ceramic)
        geo.cyl(f, (0, 0.02, 0.19), 0.17, 0.38, ceramic)
        geo.box(f, (0, -0.12, 0.19), (0.28, 0.2, 0.38), ceramic)
        seat = g.plain(rng, g.pick(rng, [g.CERAMIC, (0.15, 0.15, 0.15), (0.7, 0.6, 0.45)]), 0.02)
        geo.cyl(f, (0, 0.02, 0.4), 0.2, 0.035, seat)
    return 0.45, 0.7, 0.8


def sink_basin(geo, rng, f, z, w=0.5, d=0.4, kitchen=False):
    mat = g.metal(rng, (0.78, 0.78, 0.8), axis=0) if kitchen else g.plain(rng, g.CERAMIC, 0.02, j=0.015)
    with geo.object("sink", RAW["sink"]):
        geo.box(f, (0, 0, z + 0.005), (w, d, 0.02), mat)
        bowl = g.plain(rng, (0.45, 0.46, 0.48) if kitchen else (0.78, 0.79, 0.8), 0.1)
        geo.box(f, (0, 0, z + 0.012), (w - 0.08, d - 0.08, 0.012), bowl)
        geo.cyl(f, (0, -d / 2 + 0.04, z + 0.12), 0.015, 0.22, g.metal(rng))
        geo.box(f, (0, -d / 2 + 0.1, z + 0.22), (0.025, 0.14, 0.025), g.metal(rng))


def pedestal_sink(geo, rng, f):
    ceramic = g.plain(rng, g.CERAMIC, 0.02, j=0.015)
    with geo.object("sink", RAW["sink"]):
        geo.cyl(f, (0, 0, 0.38), 0.08, 0.76, ceramic)
        geo.box(f, (0, 0, 0.8), (0.55, 0.45, 0.1), ceramic)
        geo.box(f, (0, 0.02, 0.851), (0.42, 0.3, 0.006), g.plain(rng, (0.8, 0.81, 0.82), 0.05))
        geo.cyl(f, (0, -0.17, 0.92), 0.015, 0.14, g.metal(rng))
    return 0.55, 0.45, 0.9


def vanity(geo, rng, f, w):
    d = 0.5
    cabinet_body(geo, rng, f, w, d, 0.8, "bathroom vanity")
    with geo.object("counter", RAW["bathroom counter"]):
        geo.box(f, (0, 0.01, 0.82), (w + 0.02, d + 0.02, 0.04), g.marble(rng))
    sink_basin(geo, rng, f, 0.84, w=min(0.5, w - 0.1), d=0.38)
    return w, d, 0.9


def bathtub(geo, rng, f, length, w):
    ceramic = g.plain(rng, g.CERAMIC, 0.02, j=0.015)
    h, t = rng.uniform(0.5, 0.6), 0.07
    with geo.object("bathtub", RAW["bathtub"]):
        geo.box(f, (0, 0, 0.05), (length, w, 0.1), ceramic)
        for sy in (-1, 1):
            geo.box(f, (0, sy * (w / 2 - t / 2), h / 2), (length, t, h), ceramic)
        for sx in (-1, 1):
            geo.box(f, (sx * (length / 2 - t / 2), 0, h / 2), (t, w - 2 * t, h), ceramic)
        geo.box(f, (0, 0, 0.11), (length - 2 * t, w - 2 * t, 0.02), g.plain(rng, (0.86, 0.87, 0.88), 0.04))
    return length, w, h


def shower_curtain(geo, rng, f, length, z_top):
    mat = g.stripes(rng, g.pick(rng, [(0.95, 0.95, 0.95), (0.85, 0.9, 0.95)]),
                    g.pick(rng, [(0.55, 0.7, 0.85), (0.8, 0.8, 0.8), (0.9, 0.75, 0.8), (0.6, 0.8, 0.65)]),
                    scale=rng.uniform(4.0, 8.0), axis=0) if rng.random() < 0.6 else g.folds(
        rng, [(0.92, 0.92, 0.9), (0.8, 0.88, 0.95), (0.9, 0.85, 0.75)])
    drawn = rng.uniform(0.35, 0.8) * length
    with geo.object("shower curtain", RAW["shower curtain"]):
        geo.box(f, (-length / 2 + drawn / 2, 0, (z_top + 0.45) / 2), (drawn, 0.02, z_top - 0.45), mat)
    with geo.object("rod", RAW["object"], shadow=False):
        geo.box(f, (0, 0, z_top + 0.03), (length, 0.025, 0.025), g.metal(rng, axis=0))
