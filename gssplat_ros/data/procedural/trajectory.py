"""Handheld-like camera paths inside a procedural room.

Usage:
    poses = make_trajectory(rng, room, n_frames=60, step_m=0.07)   # [F, 4, 4] camera-to-world, OpenCV axes

Positions: a Catmull-Rom spline through random waypoints 0.8-1.8 m apart at 1.2-1.7 m height, kept 0.35 m
from the walls and 0.3 m from furniture taller than the camera's lowest height, sampled every `step_m`
metres of arc length. Orientation: yaw / pitch / roll keyframes per waypoint (75 %: aimed at a piece of
furniture 0.8-4.5 m away, else a heading drawn by free distance^3 aimed at table height; at most 1.6 rad of
turn between waypoints; roll ~2 deg), splined the same way, plus a few millimetres / milliradians of smooth hand shake.
"""

from __future__ import annotations

import math

import numpy as np

WALL_MARGIN_M = 0.35
OBSTACLE_MARGIN_M = 0.3
HEIGHT_RANGE_M = (1.2, 1.7)


def _catmull_rom(p: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Uniform Catmull-Rom through points p [N, D] (N >= 2) at parameters tau in [0, N - 1]."""
    n = len(p)
    ext = np.concatenate([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
    i = np.clip(np.floor(tau).astype(int), 0, n - 2)
    t = (tau - i)[:, None]
    p0, p1, p2, p3 = ext[i], ext[i + 1], ext[i + 2], ext[i + 3]
    a, b = 2 * p0 - 5 * p1 + 4 * p2 - p3, -p0 + 3 * p1 - 3 * p2 + p3
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + a * t**2 + b * t**3)


class _Free:
    def __init__(self, room):
        self.lx, self.ly = room.lx, room.ly
        tall = [f for f in room.obstacles() if f.top > HEIGHT_RANGE_M[0] - 0.15]
        self.lo = np.array([f.lo for f in tall]).reshape(-1, 2) - OBSTACLE_MARGIN_M
        self.hi = np.array([f.hi for f in tall]).reshape(-1, 2) + OBSTACLE_MARGIN_M

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """[N] bool for points [N, 2]."""
        xy = np.atleast_2d(xy)
        ok = (xy[:, 0] > WALL_MARGIN_M) & (xy[:, 0] < self.lx - WALL_MARGIN_M)
        ok &= (xy[:, 1] > WALL_MARGIN_M) & (xy[:, 1] < self.ly - WALL_MARGIN_M)
        if len(self.lo):
            inside = np.all((xy[:, None, :] > self.lo[None]) & (xy[:, None, :] < self.hi[None]), axis=-1)
            ok &= ~inside.any(axis=1)
        return ok

    def segment(self, a: np.ndarray, b: np.ndarray) -> bool:
        t = np.linspace(0.0, 1.0, max(2, int(np.linalg.norm(b - a) / 0.05) + 1))[:, None]
        return bool(self((1 - t) * a + t * b).all())

    def random_point(self, rng, tries: int = 400):
        for _ in range(tries):
            p = np.array([rng.uniform(0, self.lx), rng.uniform(0, self.ly)])
            if self(p)[0]:
                return p
        return None


def _waypoints(rng, free: _Free, needed_m: float) -> np.ndarray:
    start = free.random_point(rng)
    if start is None:  # a crammed room: fall back to its centre
        return np.array([[free.lx / 2, free.ly / 2], [free.lx / 2 + 0.05, free.ly / 2]])
    pts, length = [start], 0.0
    while length < needed_m and len(pts) < 64:
        for _ in range(60):
            ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.8, 1.8)
            q = pts[-1] + dist * np.array([math.cos(ang), math.sin(ang)])
            if free(q)[0] and free.segment(pts[-1], q):
                pts.append(q)
                length += dist
                break
        else:
            break
    if len(pts) < 2:
        pts.append(pts[0] + np.array([0.05, 0.0]))
    return np.array(pts)


def _wall_distance(p: np.ndarray, yaw: np.ndarray, lx: float, ly: float) -> np.ndarray:
    """Distance from p (inside [0, lx] x [0, ly]) to the room's walls along each heading."""
    dx, dy = np.cos(yaw), np.sin(yaw)
    with np.errstate(divide="ignore"):
        tx = np.where(dx > 0, (lx - p[0]) / dx, np.where(dx < 0, -p[0] / dx, np.inf))
        ty = np.where(dy > 0, (ly - p[1]) / dy, np.where(dy < 0, -p[1] / dy, np.inf))
    return np.minimum(tx, ty)


LOOK_AT_OBJECT_P = 0.75
SKIP_TARGETS = {"wall", "floor", "ceiling", "lamp", "rod", "doorframe", "rug", "pillow"}


def _targets(room) -> np.ndarray:
    """[N, 3] centres of the furniture and props (x, y, z) the camera likes to look at."""
    pts = [(np.array(o["aabb_min"]) + np.array(o["aabb_max"])) / 2 for o in room.geo.object_summaries()
           if o["name"] not in SKIP_TARGETS]
    return np.array(pts).reshape(-1, 3)


def _pick_view(rng, p, prev, cand, targets, room) -> tuple[float, tuple[float, float]]:
    """(yaw, (horizontal distance, height) of the point to aim at) for a waypoint p.

    Mostly an object 0.8-4.5 m away (turning at most 1.6 rad from the previous heading); otherwise a heading
    drawn with probability ~ free distance^3 so the camera looks into the room, aiming at table height.
    """
    if len(targets) and rng.random() < LOOK_AT_OBJECT_P:
        d = targets[:, :2] - p
        dist = np.linalg.norm(d, axis=1)
        yaw_t = np.arctan2(d[:, 1], d[:, 0])
        ok = (dist > 0.8) & (dist < 4.5)
        if prev is not None:
            ok &= np.abs((yaw_t - prev + math.pi) % (2 * math.pi) - math.pi) < 1.6
        idx = np.flatnonzero(ok)
        if len(idx):
            t = int(rng.choice(idx))
            return float(yaw_t[t]) + rng.normal(0.0, 0.15), (float(dist[t]), float(targets[t, 2]))
    reach = _wall_distance(p, cand, room.lx, room.ly)
    w = reach**3
    if prev is not None:
        turn = np.abs((cand - prev + math.pi) % (2 * math.pi) - math.pi)
        w = np.where(turn < 1.6, w, 1e-9)
    j = int(rng.choice(len(cand), p=w / w.sum()))
    return float(cand[j]) + rng.normal(0.0, 0.12), (min(float(reach[j]), 3.0), 0.6)


def look_pose(pos: np.ndarray, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """world_from_cam [4, 4] (OpenCV axes) for a camera at pos looking at yaw (about z, from +x) and pitch."""
    fwd = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)])
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = math.cos(roll), math.sin(roll)
    r2, d2 = c * right + s * down, -s * right + c * down
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = r2, d2, fwd, pos
    return T


def make_trajectory(rng: np.random.Generator, room, n_frames: int, step_m: float = 0.07) -> np.ndarray:
    """[F, 4, 4] camera-to-world poses along a smooth path inside the room (see module docstring)."""
    free = _Free(room)
    needed = step_m * max(n_frames - 1, 1) + 0.1
    best = None
    for _ in range(40):
        wps = _waypoints(rng, free, needed)
        n = len(wps)
        tau = np.linspace(0.0, n - 1, (n - 1) * 40 + 1)
        xy = _catmull_rom(wps, tau)
        ok = free(xy).all()
        if ok or best is None:
            best = (wps, tau, xy)
        if ok:
            break
    wps, tau, xy = best
    n = len(wps)
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    step = min(step_m, arc[-1] / max(n_frames - 1, 1)) if n_frames > 1 else 0.0
    s = np.arange(n_frames) * step
    tau_f = np.interp(s, arc, tau)

    keys = np.zeros((n, 4))  # z, yaw, pitch, roll
    prev = None
    cand = np.arange(24) * (2 * math.pi / 24)
    targets = _targets(room)
    for k, p in enumerate(wps):
        z = rng.uniform(*HEIGHT_RANGE_M)
        yaw, aim = _pick_view(rng, p, prev, cand, targets, room)
        if prev is not None:
            yaw = prev + (yaw - prev + math.pi) % (2 * math.pi) - math.pi
        prev = yaw
        pitch = float(np.clip(-math.atan2(z - aim[1], aim[0]) + rng.normal(0.0, 0.08), -0.75, -0.1))
        keys[k] = (z, yaw, pitch, rng.normal(0.0, 0.035))
    zyaw = _catmull_rom(keys, tau_f)
    pos_xy = _catmull_rom(wps, tau_f)

    phase = rng.uniform(0, 2 * math.pi, 6)
    freq = rng.uniform(0.15, 0.45, 6)
    i = np.arange(n_frames)
    shake = np.stack([np.sin(freq[j] * i + phase[j]) for j in range(6)], axis=1)
    poses = np.empty((n_frames, 4, 4))
    for f in range(n_frames):
        pos = np.array([pos_xy[f, 0], pos_xy[f, 1], np.clip(zyaw[f, 0], *HEIGHT_RANGE_M)]) + 0.004 * shake[f, :3]
        yaw, pitch, roll = zyaw[f, 1:] + 0.004 * shake[f, 3:]
        poses[f] = look_pose(pos, float(yaw), float(np.clip(pitch, -0.8, -0.08)), float(roll))
    return poses
