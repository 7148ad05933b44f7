"""Numba ray caster for procedural rooms: exact RGB, z-depth and primitive ids per pixel.

Usage:
    rgb, depth, prim = render_view(scene_arrays, world_from_cam, K, width, height)

Primitives (local frame = rotation `rot` [3,3] world_from_local about `center`, half sizes `half`):
box |x|<=hx, |y|<=hy, |z|<=hz; cylinder x^2+y^2<=hx^2, |z|<=hz; sphere |p|<=hx. Primitives are grouped into
objects with world AABBs so each ray tests few primitives. Shading is view-independent (3D procedural
albedo from the local hit point, Lambert from point lights with hard shadows, hemispheric ambient), so
every surface point has the same colour in every view.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

MISS = 1e30
T_EPS = 1e-6

PRIM_BOX, PRIM_CYLINDER, PRIM_SPHERE = 0, 1, 2

# Materials (mat_kind); params p = mat_param[k] = (axis, p1, p2, seed offset).
MAT_PLAIN, MAT_WOOD, MAT_STRIPES, MAT_TILES, MAT_FABRIC, MAT_MARBLE = 0, 1, 2, 3, 4, 5
MAT_CANVAS, MAT_BOOKS, MAT_PANEL, MAT_GLASS, MAT_FOLDS, MAT_METAL = 6, 7, 8, 9, 10, 11


# ------------------------------------------------------------------------------------------ noise
@njit(cache=True)
def _hash(perm, ix, iy, iz):
    return perm[(perm[(perm[ix & 255] + iy) & 255] + iz) & 255]


@njit(cache=True)
def _vnoise(perm, x, y, z):
    """Smooth value noise in [0, 1]."""
    xf, yf, zf = math.floor(x), math.floor(y), math.floor(z)
    ix, iy, iz = int(xf), int(yf), int(zf)
    fx, fy, fz = x - xf, y - yf, z - zf
    u, v, w = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy), fz * fz * (3 - 2 * fz)
    c000 = _hash(perm, ix, iy, iz)
    c100 = _hash(perm, ix + 1, iy, iz)
    c010 = _hash(perm, ix, iy + 1, iz)
    c110 = _hash(perm, ix + 1, iy + 1, iz)
    c001 = _hash(perm, ix, iy, iz + 1)
    c101 = _hash(perm, ix + 1, iy, iz + 1)
    c011 = _hash(perm, ix, iy + 1, iz + 1)
    c111 = _hash(perm, ix + 1, iy + 1, iz + 1)
    x00 = c000 + u * (c100 - c000)
    x10 = c010 + u * (c110 - c010)
    x01 = c001 + u * (c101 - c001)
    x11 = c011 + u * (c111 - c011)
    y0 = x00 + v * (x10 - x00)
    y1 = x01 + v * (x11 - x01)
    return (y0 + w * (y1 - y0)) / 255.0


@njit(cache=True)
def _fbm(perm, x, y, z, octaves):
    total, amp, norm = 0.0, 1.0, 0.0
    for _ in range(octaves):
        total += amp * _vnoise(perm, x, y, z)
        norm += amp
        amp *= 0.5
        x, y, z = x * 2.03, y * 2.03, z * 2.03
    return total / norm


@njit(cache=True)
def _smooth(e0, e1, x):
    t = min(max((x - e0) / (e1 - e0), 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


# ------------------------------------------------------------------------------------------ geometry
@njit(cache=True)
def _box(ox, oy, oz, dx, dy, dz, a, b, c, tmax):
    t0, t1 = -MISS, tmax
    ax, sg = -1, 0.0
    for i in range(3):
        if i == 0:
            o, d, h = ox, dx, a
        elif i == 1:
            o, d, h = oy, dy, b
        else:
            o, d, h = oz, dz, c
        if abs(d) < 1e-15:
            if o < -h or o > h:
                return MISS, 0.0, 0.0, 0.0
            continue
        inv = 1.0 / d
        ta, tb = (-h - o) * inv, (h - o) * inv
        s = -1.0
        if ta > tb:
            ta, tb, s = tb, ta, 1.0
        if ta > t0:
            t0, ax, sg = ta, i, s
        if tb < t1:
            t1 = tb
        if t0 > t1:
            return MISS, 0.0, 0.0, 0.0
    if t0 <= T_EPS or ax < 0:
        return MISS, 0.0, 0.0, 0.0
    if ax == 0:
        return t0, sg, 0.0, 0.0
    if ax == 1:
        return t0, 0.0, sg, 0.0
    return t0, 0.0, 0.0, sg


@njit(cache=True)
def _cylinder(ox, oy, oz, dx, dy, dz, r, c, tmax):
    best, nx, ny, nz = tmax, 0.0, 0.0, 0.0
    hit = False
    A = dx * dx + dy * dy
    if A > 1e-20:
        B = ox * dx + oy * dy
        C = ox * ox + oy * oy - r * r
        disc = B * B - A * C
        if disc >= 0.0:
            t = (-B - math.sqrt(disc)) / A
            if T_EPS < t < best:
                z = oz + t * dz
                if -c <= z <= c:
                    best, hit = t, True
                    nx, ny, nz = (ox + t * dx) / r, (oy + t * dy) / r, 0.0
    if abs(dz) > 1e-15:
        for sgn in (-1.0, 1.0):
            t = (sgn * c - oz) / dz
            if T_EPS < t < best:
                x, y = ox + t * dx, oy + t * dy
                if x * x + y * y <= r * r:
                    best, hit = t, True
                    nx, ny, nz = 0.0, 0.0, sgn
    if not hit:
        return MISS, 0.0, 0.0, 0.0
    return best, nx, ny, nz


@njit(cache=True)
def _sphere(ox, oy, oz, dx, dy, dz, r, tmax):
    A = dx * dx + dy * dy + dz * dz
    B = ox * dx + oy * dy + oz * dz
    C = ox * ox + oy * oy + oz * oz - r * r
    disc = B * B - A * C
    if disc < 0.0:
        return MISS, 0.0, 0.0, 0.0
    t = (-B - math.sqrt(disc)) / A
    if t <= T_EPS or t >= tmax:
        return MISS, 0.0, 0.0, 0.0
    return t, (ox + t * dx) / r, (oy + t * dy) / r, (oz + t * dz) / r


@njit(cache=True)
def _local(k, x, y, z, center, rot, is_point):
    if is_point:
        x, y, z = x - center[k, 0], y - center[k, 1], z - center[k, 2]
    R = rot[k]
    return (R[0, 0] * x + R[1, 0] * y + R[2, 0] * z,
            R[0, 1] * x + R[1, 1] * y + R[2, 1] * z,
            R[0, 2] * x + R[1, 2] * y + R[2, 2] * z)


@njit(cache=True)
def _hit(k, ox, oy, oz, dx, dy, dz, tmax, ptype, center, rot, half):
    lox, loy, loz = _local(k, ox, oy, oz, center, rot, True)
    ldx, ldy, ldz = _local(k, dx, dy, dz, center, rot, False)
    typ = ptype[k]
    if typ == PRIM_BOX:
        return _box(lox, loy, loz, ldx, ldy, ldz, half[k, 0], half[k, 1], half[k, 2], tmax)
    if typ == PRIM_CYLINDER:
        return _cylinder(lox, loy, loz, ldx, ldy, ldz, half[k, 0], half[k, 2], tmax)
    return _sphere(lox, loy, loz, ldx, ldy, ldz, half[k, 0], tmax)


@njit(cache=True)
def _aabb(ox, oy, oz, ix, iy, iz, lo, hi, j, tmax):
    t1, t2 = (lo[j, 0] - ox) * ix, (hi[j, 0] - ox) * ix
    tn, tf = min(t1, t2), max(t1, t2)
    t1, t2 = (lo[j, 1] - oy) * iy, (hi[j, 1] - oy) * iy
    tn, tf = max(tn, min(t1, t2)), min(tf, max(t1, t2))
    t1, t2 = (lo[j, 2] - oz) * iz, (hi[j, 2] - oz) * iz
    tn, tf = max(tn, min(t1, t2)), min(tf, max(t1, t2))
    return tf >= max(tn, 0.0) and tn < tmax


@njit(cache=True)
def _inv(d):
    return 1.0 / d if abs(d) > 1e-15 else 1e30


@njit(cache=True)
def _occluded(ox, oy, oz, dx, dy, dz, ptype, center, rot, half, pshadow, olo, ohi, ostart, oend, oshadow):
    """Any shadow-casting primitive on the segment o + t d, t in (0, 1)?"""
    ix, iy, iz = _inv(dx), _inv(dy), _inv(dz)
    for j in range(olo.shape[0]):
        if oshadow[j] == 0 or not _aabb(ox, oy, oz, ix, iy, iz, olo, ohi, j, 1.0):
            continue
        for k in range(ostart[j], oend[j]):
            if pshadow[k] == 0:
                continue
            t = _hit(k, ox, oy, oz, dx, dy, dz, 1.0, ptype, center, rot, half)[0]
            if t < 1.0 - 1e-4:
                return True
    return False


# ------------------------------------------------------------------------------------------ albedo
@njit(cache=True)
def _axis(x, y, z, a):
    if a == 0:
        return x, y, z
    if a == 1:
        return y, z, x
    return z, x, y


@njit(cache=True)
def _albedo(k, px, py, pz, kind, ca, cb, scale, param, half, perm):
    """RGB albedo at local point p of primitive k; returns (r, g, b, unlit)."""
    ar, ag, ab = ca[k, 0], ca[k, 1], ca[k, 2]
    br, bg, bb = cb[k, 0], cb[k, 1], cb[k, 2]
    s = scale[k]
    ax = int(param[k, 0])
    p1, p2, off = param[k, 1], param[k, 2], param[k, 3]
    qx, qy, qz = px + off, py + 1.7 * off, pz + 2.3 * off
    m = kind[k]
    if m == MAT_PLAIN:
        f = 1.0 + p1 * (_fbm(perm, qx * s, qy * s, qz * s, 3) - 0.5) * 2.0
        return ar * f, ag * f, ab * f, False
    if m == MAT_WOOD:
        u, v, w = _axis(qx, qy, qz, ax)  # grain runs along u
        shift = 0.0
        shade = 1.0
        if p2 > 0.0:  # planks of width p2 across v
            pi = math.floor(v / p2)
            h = _hash(perm, int(pi), 7, 3) / 255.0
            shift = h * 37.0
            shade = 0.88 + 0.24 * h
            fv = v / p2 - pi
            if fv < 0.03 or fv > 0.97 or (u * 0.7 + h * 5.0) % 2.4 < 0.02:
                shade *= 0.55
        r = math.sqrt((v * 3.0 + shift) ** 2 + (w * 9.0) ** 2) * s
        r += p1 * _fbm(perm, u * 1.5, v * 6.0, w * 6.0, 2)
        g = _smooth(0.25, 0.75, r - math.floor(r))
        n = 0.85 + 0.3 * _vnoise(perm, u * 0.7, v * 20.0, w * 20.0)
        f = shade * n
        return (ar + g * (br - ar)) * f, (ag + g * (bg - ag)) * f, (ab + g * (bb - ab)) * f, False
    if m == MAT_STRIPES:
        u, v, w = _axis(qx, qy, qz, ax)
        t = _smooth(0.35, 0.65, 0.5 + 0.5 * math.sin(2.0 * math.pi * u * s))
        f = 0.94 + 0.12 * _vnoise(perm, qx * 12.0, qy * 12.0, qz * 12.0)
        return (ar + t * (br - ar)) * f, (ag + t * (bg - ag)) * f, (ab + t * (bb - ab)) * f, False
    if m == MAT_TILES:
        u, v, w = _axis(qx, qy, qz, ax)  # ax = the face normal axis; tiles over v, w
        iv, iw = math.floor(v * s), math.floor(w * s)
        fv, fw = v * s - iv, w * s - iw
        t = p1 * ((int(iv) + int(iw)) & 1)
        f = 0.92 + 0.16 * _vnoise(perm, v * 4.0, w * 4.0, iv + 3.0 * iw)
        if fv < p2 or fw < p2:
            f *= 0.6
        return (ar + t * (br - ar)) * f, (ag + t * (bg - ag)) * f, (ab + t * (bb - ab)) * f, False
    if m == MAT_FABRIC:
        f = 0.86 + 0.28 * _fbm(perm, qx * s, qy * s, qz * s, 3)
        f *= 0.96 + 0.04 * math.sin(qx * 180.0) * math.sin(qy * 180.0 + qz * 180.0)
        return ar * f, ag * f, ab * f, False
    if m == MAT_MARBLE:
        t = _fbm(perm, qx * s, qy * s, qz * s, 4)
        v = 0.5 + 0.5 * math.sin((qx + qy + qz) * s * 1.3 + 9.0 * t)
        v = v * v * v
        return ar + v * (br - ar), ag + v * (bg - ag), ab + v * (bb - ab), False
    if m == MAT_CANVAS:
        n1 = _fbm(perm, qx * s, qy * s, qz * s, 3) - 0.5
        n2 = _fbm(perm, qx * s + 17.0, qy * s, qz * s, 3) - 0.5
        n3 = _fbm(perm, qx * s, qy * s + 31.0, qz * s, 3) - 0.5
        return ar + 3.0 * br * n1, ag + 3.0 * bg * n2, ab + 3.0 * bb * n3, False
    if m == MAT_BOOKS:
        u, v, w = _axis(px, py, pz, ax)  # books stand side by side along u; local z is up
        x = u * s + 0.35 * _vnoise(perm, u * 2.0, 0.5, off)
        bi = int(math.floor(x))
        h1 = _hash(perm, bi, 11, int(off)) / 255.0
        h2 = _hash(perm, bi, 23, int(off)) / 255.0
        h3 = _hash(perm, bi, 37, int(off)) / 255.0
        h4 = _hash(perm, bi, 51, int(off)) / 255.0
        top = 0.6 + 0.4 * h4
        hz = half[k, 2]
        if (pz + hz) / (2.0 * hz) > top or x - math.floor(x) < 0.07:
            return ar * 0.45, ag * 0.45, ab * 0.45, False
        f = 0.9 + 0.1 * _vnoise(perm, px * 30.0, py * 30.0, pz * 30.0)
        return (0.15 + 0.7 * h1) * f, (0.12 + 0.5 * h2) * f, (0.12 + 0.55 * h3) * f, False
    if m == MAT_PANEL:
        u, v, w = _axis(px, py, pz, ax)  # ax = front normal axis; door grid over v, w
        f = 0.93 + 0.14 * _fbm(perm, qx * 8.0, qy * 8.0, qz * 8.0, 2)
        fv = (v + half[k, (ax + 1) % 3]) * s
        fw = (w + half[k, (ax + 2) % 3]) * p2 if p2 > 0.0 else 0.5
        if fv - math.floor(fv) < p1 * s or (p2 > 0.0 and fw - math.floor(fw) < p1 * p2):
            f *= 0.5
        return ar * f, ag * f, ab * f, False
    if m == MAT_GLASS:
        t = (pz / max(half[k, 2], 1e-6) + 1.0) * 0.5
        cl = _fbm(perm, qx * s, qy * s, qz * s * 2.0, 3)
        cl = _smooth(0.5, 0.8, cl) * 0.6
        r = br + t * (ar - br)
        g = bg + t * (ag - bg)
        b = bb + t * (ab - bb)
        return r + cl * (1.0 - r), g + cl * (1.0 - g), b + cl * (1.0 - b), True
    if m == MAT_FOLDS:
        u, v, w = _axis(qx, qy, qz, ax)
        f = 0.7 + 0.3 * (0.5 + 0.5 * math.sin(2.0 * math.pi * u * s + 1.5 * _vnoise(perm, u * 2.0, v, w * 0.5)))
        f *= 0.93 + 0.14 * _vnoise(perm, qx * 15.0, qy * 15.0, qz * 15.0)
        return ar * f, ag * f, ab * f, False
    # MAT_METAL: brushed, stretched noise along the axis
    u, v, w = _axis(qx, qy, qz, ax)
    f = 0.85 + 0.3 * _vnoise(perm, u * s * 0.05, v * s, w * s)
    return ar * f, ag * f, ab * f, False


# ------------------------------------------------------------------------------------------ render
@njit(parallel=True, cache=True)
def render_kernel(R, origin, dirs, ptype, center, rot, half, pshadow, olo, ohi, ostart, oend, oshadow,
                  kind, ca, cb, scale, param, perm, lights, ambient, out_rgb, out_depth, out_prim):
    """Fill out_rgb [H,W,3], out_depth [H,W] (z-depth, 0 on miss) and out_prim [H,W] (-1 on miss)."""
    H, W = dirs.shape[0], dirs.shape[1]
    ox, oy, oz = origin[0], origin[1], origin[2]
    for v in prange(H):
        for u in range(W):
            cx, cy, cz = dirs[v, u, 0], dirs[v, u, 1], dirs[v, u, 2]  # camera frame, z = 1
            dx = R[0, 0] * cx + R[0, 1] * cy + R[0, 2] * cz
            dy = R[1, 0] * cx + R[1, 1] * cy + R[1, 2] * cz
            dz = R[2, 0] * cx + R[2, 1] * cy + R[2, 2] * cz
            ix, iy, iz = _inv(dx), _inv(dy), _inv(dz)
            best, bk = MISS, -1
            bnx, bny, bnz = 0.0, 0.0, 0.0
            for j in range(olo.shape[0]):
                if not _aabb(ox, oy, oz, ix, iy, iz, olo, ohi, j, best):
                    continue
                for k in range(ostart[j], oend[j]):
                    t, nx, ny, nz = _hit(k, ox, oy, oz, dx, dy, dz, best, ptype, center, rot, half)
                    if t < best:
                        best, bk, bnx, bny, bnz = t, k, nx, ny, nz
            if bk < 0:
                out_depth[v, u] = 0.0
                out_prim[v, u] = -1
                out_rgb[v, u, 0] = 0.0
                out_rgb[v, u, 1] = 0.0
                out_rgb[v, u, 2] = 0.0
                continue
            out_depth[v, u] = best  # dirs have camera z = 1, so t is the z-depth
            out_prim[v, u] = bk
            hx, hy, hz = ox + best * dx, oy + best * dy, oz + best * dz
            Rk = rot[bk]
            nx = Rk[0, 0] * bnx + Rk[0, 1] * bny + Rk[0, 2] * bnz
            ny = Rk[1, 0] * bnx + Rk[1, 1] * bny + Rk[1, 2] * bnz
            nz = Rk[2, 0] * bnx + Rk[2, 1] * bny + Rk[2, 2] * bnz
            lx, ly, lz = _local(bk, hx, hy, hz, center, rot, True)
            r, g, b, unlit = _albedo(bk, lx, ly, lz, kind, ca, cb, scale, param, half, perm)
            if not unlit:
                light = ambient * (0.8 + 0.2 * nz)
                sx, sy, sz = hx + 1e-4 * nx, hy + 1e-4 * ny, hz + 1e-4 * nz
                for li in range(lights.shape[0]):
                    Lx, Ly, Lz = lights[li, 0] - sx, lights[li, 1] - sy, lights[li, 2] - sz
                    d2 = Lx * Lx + Ly * Ly + Lz * Lz
                    ndl = (nx * Lx + ny * Ly + nz * Lz) / math.sqrt(d2)
                    if ndl <= 0.0:
                        continue
                    if _occluded(sx, sy, sz, Lx, Ly, Lz, ptype, center, rot, half, pshadow, olo, ohi, ostart,
                                 oend, oshadow):
                        continue
                    light += lights[li, 3] * ndl / (1.0 + 0.06 * d2)
                r, g, b = r * light, g * light, b * light
            out_rgb[v, u, 0] = min(max(r, 0.0), 1.0)
            out_rgb[v, u, 1] = min(max(g, 0.0), 1.0)
            out_rgb[v, u, 2] = min(max(b, 0.0), 1.0)


def camera_dirs(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """[H, W, 3] camera-frame ray directions with z = 1 through pixel centres (u + 0.5, v + 0.5)."""
    u = (np.arange(width) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(height) + 0.5 - K[1, 2]) / K[1, 1]
    d = np.empty((height, width, 3))
    d[..., 0] = u[None, :]
    d[..., 1] = v[:, None]
    d[..., 2] = 1.0
    return d


def render_view(arrays: dict, world_from_cam: np.ndarray, dirs: np.ndarray):
    """Render one view. `arrays` comes from `layout.SceneGeometry.arrays()`; dirs from `camera_dirs`.

    Returns:
        rgb [H, W, 3] float32 in [0, 1], depth [H, W] float32 metres (z-depth, 0 = no hit),
        prim [H, W] int32 primitive index (-1 = no hit).
    """
    H, W = dirs.shape[:2]
    rgb = np.empty((H, W, 3), np.float32)
    depth = np.empty((H, W), np.float32)
    prim = np.empty((H, W), np.int32)
    a = arrays
    render_kernel(
        np.ascontiguousarray(world_from_cam[:3, :3], dtype=np.float64),
        np.ascontiguousarray(world_from_cam[:3, 3], dtype=np.float64),
        dirs, a["ptype"], a["center"], a["rot"], a["half"], a["pshadow"], a["olo"], a["ohi"], a["ostart"],
        a["oend"], a["oshadow"], a["kind"], a["ca"], a["cb"], a["scale"], a["param"], a["perm"], a["lights"],
        float(a["ambient"]), rgb, depth, prim,
    )
    return rgb, depth, prim
