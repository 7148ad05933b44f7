"""Appearance randomisation shared by every scene source: photo textures, camera response, sensor noise.

Usage:
    cfg = APPEARANCE_PRESETS["full"]                       # or "none", "camera"
    width, height, K = random_camera(rng, 160, 120, cfg)   # per scene: size and intrinsics
    look = SceneLook.draw(rng, cfg)                        # per scene: white balance, exposure bias
    rgb8 = camera_rgb(rgb, rng, cfg, look)                 # per view: auto-exposure, noise, blur, JPEG
    depth = depth_sensor(depth, rgb, rng, cfg.depth_sensor)     # noise set by the sensor, not our size

Everything is a function of the numpy Generator it is given, so a scene drawn from (seed, index) is the
same bytes on every run.

Photo textures are the colour photographs and surface scans that ship inside scikit-image
(`skimage/data`); their licences, from scikit-image's own docstrings: astronaut (public domain, NASA),
brick, grass, gravel (CC0, cc0textures.com), camera (CC0, Lav Varshney), chelsea (CC0, Stefan van der
Walt), coffee (CC0, Rachel Michetti), coins (no known copyright restrictions), rocket (public domain,
SpaceX). scikit-image itself is BSD-3-Clause.

Depth noise models: "kinect" is the structured-light Kinect v1 (axial sigma 0.0012 + 0.0019 (z - 0.4)^2 m,
Nguyen, Izadi and Lovell 2012; 1/8-pixel disparity quantisation for a 7.5 cm baseline and 580 px focal;
0.5-4.5 m range); "realsense" an active-stereo D435-like camera (sigma = 0.08 px subpixel error
* z^2 / (f b), f = 385 px, b = 5 cm, spatially correlated; 0.2-6 m). Both drop pixels at depth edges,
on dark surfaces and on shiny ones.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Optional

import numpy as np

# (file in skimage/data, grey?) -- see the module docstring for each licence
PHOTOS: tuple[tuple[str, bool], ...] = (
    ("astronaut.png", False), ("brick.png", True), ("camera.png", True), ("chelsea.png", False),
    ("coffee.png", False), ("coins.png", True), ("grass.png", True), ("gravel.png", True), ("rocket.jpg", False),
)  # fmt: skip
TEXTURE_SIZE = 128


def photo_index(name: str) -> int:
    """Index of a packaged photo by its stem ("brick", "coffee", ...)."""
    stems = [n.rsplit(".", 1)[0] for n, _ in PHOTOS]
    if name not in stems:
        raise ValueError(f"no packaged photo {name!r} ({', '.join(stems)})")
    return stems.index(name)


@dataclass(frozen=True)
class AppearanceConfig:
    photo_texture_prob: float = 0.0  # share of surfaces (per object part) that carry a photo texture
    random_camera: bool = False  # per-scene image size (0.75-1.25x, multiples of 16) and intrinsics
    exposure: bool = False  # per-view auto-exposure and white balance drift, per-scene colour cast
    rgb_noise: bool = False  # shot + read noise, blur, vignetting, JPEG
    depth_sensor: str = "exact"  # exact | kinect | realsense


APPEARANCE_PRESETS: dict[str, AppearanceConfig] = {
    "none": AppearanceConfig(),
    "photo": AppearanceConfig(photo_texture_prob=0.5),
    "camera": AppearanceConfig(random_camera=True, exposure=True, rgb_noise=True, depth_sensor="kinect"),
    "full": AppearanceConfig(photo_texture_prob=0.5, random_camera=True, exposure=True, rgb_noise=True,
                             depth_sensor="kinect"),
}
DEPTH_SENSORS = ("exact", "kinect", "realsense")


def appearance_config(preset: str, depth_sensor: Optional[str] = None) -> AppearanceConfig:
    """A preset by name, optionally with another depth sensor model."""
    if preset not in APPEARANCE_PRESETS:
        raise ValueError(f"unknown appearance preset {preset!r} ({', '.join(APPEARANCE_PRESETS)})")
    cfg = APPEARANCE_PRESETS[preset]
    if depth_sensor is not None:
        if depth_sensor not in DEPTH_SENSORS:
            raise ValueError(f"unknown depth sensor {depth_sensor!r} ({', '.join(DEPTH_SENSORS)})")
        cfg = replace(cfg, depth_sensor=depth_sensor)
    return cfg


# ------------------------------------------------------------------------------------------ textures
@functools.lru_cache(maxsize=2)
def photo_textures(size: int = TEXTURE_SIZE) -> np.ndarray:
    """[T, size, size, 3] float32 0-1: the packaged photos, centre-cropped square and resized.

    Grey photos stay grey here; `texture_detail` tints them with the surface colour.
    """
    from PIL import Image

    root = resources.files("skimage") / "data"
    out = []
    for name, _ in PHOTOS:
        with Image.open(io.BytesIO((root / name).read_bytes())) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            out.append(np.asarray(im.resize((size, size), Image.BILINEAR), np.float32) / 255.0)
    return np.stack(out)


def triplanar(textures: np.ndarray, tex_id: np.ndarray, points: np.ndarray, normals: np.ndarray,
              scale_m: np.ndarray) -> np.ndarray:
    """Sample textures [T, S, S, 3] on surfaces by world position (the same colour in every view).

    Args:
        tex_id: [N] int texture per point (>= 0).
        points: [N, 3] world metres; normals: [N, 3] unit; scale_m: [N] metres per texture tile.

    Returns:
        [N, 3] float32: the three axis projections blended by |normal|^4.
    """
    T, S = textures.shape[:2]
    w = np.abs(normals) ** 4
    w /= np.maximum(w.sum(1, keepdims=True), 1e-9)
    uvw = points / scale_m[:, None]  # [N, 3] tiles
    out = np.zeros((len(points), 3), np.float32)
    for axis, (a, b) in enumerate(((1, 2), (0, 2), (0, 1))):
        u = ((uvw[:, a] % 1.0) * S).astype(np.int64) % S
        v = ((uvw[:, b] % 1.0) * S).astype(np.int64) % S
        out += w[:, axis:axis + 1] * textures[tex_id, v, u]
    return out


def texture_detail(sample: np.ndarray, tex_id: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """[N, 3] multiplicative factor (mean ~1) from texture samples: colour photos keep their hue, grey ones
    only modulate brightness so the surface keeps its own colour."""
    grey = np.array([g for _, g in PHOTOS])[tex_id]
    mean = photo_textures().reshape(len(PHOTOS), -1, 3).mean(1)[tex_id]  # [N, 3]
    ratio = sample / np.maximum(mean, 1e-3)
    ratio = np.where(grey[:, None], ratio.mean(1, keepdims=True), ratio)
    return 1.0 + strength[:, None] * (np.clip(ratio, 0.0, 3.0) - 1.0)


def overlay_photo_textures(rgb: np.ndarray, depth: np.ndarray, world_from_cam: np.ndarray, K: np.ndarray,
                           surface: np.ndarray, chosen: np.ndarray, scale_m: np.ndarray) -> np.ndarray:
    """Photo-texture a rendered view by world position, for renderers without texture support.

    Normals come from the depth map's neighbours, so the pattern sticks to the surface in every view.

    Args:
        rgb: [H, W, 3] float 0-1; depth: [H, W] metres (0 = none); world_from_cam: [4, 4]; K: [3, 3].
        surface: [H, W] int surface index (-1 = none); chosen: [S] int texture per surface (-1 = plain);
        scale_m: [S] metres per tile per surface.

    Returns:
        [H, W, 3] float32.
    """
    H, W = depth.shape
    u = (np.arange(W) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(H) + 0.5 - K[1, 2]) / K[1, 1]
    cam = np.stack([np.broadcast_to(u[None], (H, W)) * depth, np.broadcast_to(v[:, None], (H, W)) * depth,
                    depth], -1)
    pts = cam @ world_from_cam[:3, :3].T + world_from_cam[:3, 3]  # [H, W, 3] world
    du = np.gradient(pts, axis=1)
    dv = np.gradient(pts, axis=0)
    n = np.cross(du, dv)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    tex = np.where(surface >= 0, chosen[np.maximum(surface, 0)], -1)
    mask = (tex >= 0) & (depth > 0)
    out = rgb.astype(np.float32).copy()
    if mask.any():
        t = tex[mask]
        sample = triplanar(photo_textures(), t, pts[mask], n[mask], scale_m[surface[mask]])
        out[mask] = np.clip(out[mask] * texture_detail(sample, t, np.full(len(t), 0.8)), 0.0, 1.0)
    return out


# ------------------------------------------------------------------------------------------ camera
def random_camera(rng: np.random.Generator, width: int, height: int,
                  cfg: AppearanceConfig) -> tuple[int, int, np.ndarray]:
    """(width, height, K [3, 3]) for one scene: the given size and 0.9 W focal, or a random draw."""
    if not cfg.random_camera:
        f = 0.9 * width
        return width, height, np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    s = rng.uniform(0.75, 1.25)
    w = max(32, int(round(width * s / 16)) * 16)
    h = max(32, int(round(height * s / 16)) * 16)
    hfov = math.radians(rng.uniform(50.0, 75.0))
    fx = w / 2 / math.tan(hfov / 2)
    fy = fx * rng.uniform(0.98, 1.02)
    cx, cy = w / 2 + rng.uniform(-0.03, 0.03) * w, h / 2 + rng.uniform(-0.03, 0.03) * h
    return w, h, np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])


@dataclass
class SceneLook:
    """Per-scene camera character: white balance cast and exposure bias, both drawn once."""

    wb_gain: np.ndarray  # [3] per-channel gain (green = 1)
    exposure_target: float  # mean brightness auto-exposure aims at
    noise_a: float  # shot-noise variance per unit signal
    noise_b: float  # read-noise variance
    jpeg_quality: int  # 0 = no JPEG
    vignetting: float  # brightness lost at the image corners

    @staticmethod
    def draw(rng: np.random.Generator, cfg: AppearanceConfig) -> SceneLook:
        wb = np.exp(rng.normal(0.0, 0.12, 3)) if cfg.exposure else np.ones(3)
        return SceneLook(wb_gain=wb / wb[1], exposure_target=float(rng.uniform(0.3, 0.55)),
                         noise_a=float(rng.uniform(5e-4, 4e-3)), noise_b=float(rng.uniform(1e-5, 2e-4)),
                         jpeg_quality=int(rng.integers(55, 96)) if rng.random() < 0.8 else 0,
                         vignetting=float(rng.uniform(0.0, 0.35)))


def camera_rgb(rgb: np.ndarray, rng: np.random.Generator, cfg: AppearanceConfig, look: SceneLook) -> np.ndarray:
    """One view through a simulated camera: [H, W, 3] float 0-1 (the scene's radiance) -> uint8."""
    x = rgb.astype(np.float32)
    gain = 1.0
    if cfg.exposure:
        wb = look.wb_gain * np.exp(rng.normal(0.0, 0.03, 3))  # white balance drifts between views
        luma = float((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
        target = look.exposure_target * math.exp(rng.normal(0.0, 0.15))  # auto-exposure hunts
        gain = float(np.clip(target / max(luma, 1e-3), 0.35, 4.0))
        x = x * (gain * wb).astype(np.float32)
    if cfg.rgb_noise:
        H, W = x.shape[:2]
        yy, xx = np.mgrid[0:H, 0:W]
        r2 = ((xx + 0.5 - W / 2) ** 2 + (yy + 0.5 - H / 2) ** 2) / ((W / 2) ** 2 + (H / 2) ** 2)
        x = x * (1.0 - look.vignetting * r2)[..., None].astype(np.float32)
        if rng.random() < 0.35:
            from scipy.ndimage import gaussian_filter

            x = gaussian_filter(x, sigma=(rng.uniform(0.3, 1.0),) * 2 + (0,))
        elif rng.random() < 0.2:
            x = _motion_blur(x, rng)
        # sensor noise grows with the signal and with the gain the exposure needed
        var = look.noise_a * gain * np.clip(x, 0, None) + look.noise_b * gain * gain
        x = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(var).astype(np.float32)
    out = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if cfg.rgb_noise and look.jpeg_quality:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=look.jpeg_quality)
        out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()
    return out


def _motion_blur(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import convolve

    n = int(rng.integers(3, 7))
    k = np.zeros((n, n), np.float32)
    a = rng.uniform(0, math.pi)
    for t in np.linspace(-(n - 1) / 2, (n - 1) / 2, 4 * n):
        k[int(round((n - 1) / 2 + t * math.sin(a))), int(round((n - 1) / 2 + t * math.cos(a)))] = 1.0
    k /= k.sum()
    return np.stack([convolve(x[..., c], k, mode="nearest") for c in range(3)], -1)


# ------------------------------------------------------------------------------------------ depth
def depth_sensor(depth: np.ndarray, rgb: np.ndarray, rng: np.random.Generator, model: str,
                 shiny: Optional[np.ndarray] = None) -> np.ndarray:
    """Exact z-depth [H, W] metres (0 = none) -> what a depth camera would report (0 = hole).

    Args:
        rgb: [H, W, 3] 0-1 radiance: dark surfaces return too little IR and go missing.
        shiny: optional [H, W] bool of specular surfaces (metal, glass), dropped more often.
    """
    if model == "exact":
        return depth
    if model not in DEPTH_SENSORS:
        raise ValueError(f"unknown depth sensor {model!r} ({', '.join(DEPTH_SENSORS)})")
    z = depth.astype(np.float64)
    valid = z > 0
    H, W = z.shape
    if model == "kinect":
        near, far = 0.5, 4.5
        sigma = 0.0012 + 0.0019 * (z - 0.4) ** 2
        noisy = z + rng.standard_normal(z.shape) * sigma
        fb = 580.0 * 0.075  # focal (px at 640 wide) * baseline (m)
        disp = np.round(fb / np.maximum(noisy, 1e-3) * 8.0) / 8.0
        noisy = fb / np.maximum(disp, 1e-6)
        edge_drop, dark_drop, shiny_drop, speckle = 0.7, 0.6, 0.5, 0.005
    else:
        near, far = 0.2, 6.0
        sigma = 0.08 * z**2 / (385.0 * 0.05)
        from scipy.ndimage import gaussian_filter

        field = gaussian_filter(rng.standard_normal(z.shape), 2.0) * 4.0  # unit-ish std, correlated over ~4 px
        noisy = z + (0.5 * field + 0.5 * rng.standard_normal(z.shape)) * sigma
        edge_drop, dark_drop, shiny_drop, speckle = 0.5, 0.3, 0.6, 0.01
    # depth edges: the pattern is occluded / the matcher fails where neighbours jump by > 5 % of the depth
    zp = np.pad(np.where(valid, z, 0.0), 1, mode="edge")
    jump = np.zeros_like(z)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            jump = np.maximum(jump, np.abs(zp[1 + dy:1 + dy + H, 1 + dx:1 + dx + W] - z))
    holes = (jump > 0.05 * z) & (rng.random(z.shape) < edge_drop)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    holes |= (luma < 0.08) & (rng.random(z.shape) < dark_drop)
    if shiny is not None:
        holes |= shiny & (rng.random(z.shape) < shiny_drop)
    holes |= rng.random(z.shape) < speckle
    keep = valid & ~holes & (z >= near) & (z <= far)
    return np.where(keep, np.round(noisy * 1000.0) / 1000.0, 0.0).astype(np.float32)  # mm quantisation


__all__ = ["AppearanceConfig", "APPEARANCE_PRESETS", "DEPTH_SENSORS", "SceneLook", "appearance_config",
           "camera_rgb", "depth_sensor", "overlay_photo_textures", "photo_index", "photo_textures", "random_camera",
           "texture_detail", "triplanar"]
