"""One renderer interface with named backends: `cpu` (numba), `gsplat` (CUDA), `auto`.

Usage:
    from gssplat_ros.render import render, RenderSettings
    out = render(gaussians, cameras, RenderSettings(backend="auto"))
    out.rgb      # [V, H, W, 3]
    out.features # [V, H, W, D] or None
    out.depth    # [V, H, W] expected depth (sum w_i z_i / alpha, 0 where empty)
    out.alpha    # [V, H, W]

Semantics follow gsplat's classic 3DGS rasterisation: 0.3 px screen-space dilation, alpha clamped to
0.99, fragments with alpha < 1/255 skipped, a pixel stops once transmittance falls below 1e-4,
Gaussians outside [near_m, far_m] culled, pixel centres at +0.5, SH degree 0-3.
Backends are imported lazily on first use, so the core imports without numba, gsplat or CUDA.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Optional

import torch
from torch import Tensor

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import Gaussians

log = logging.getLogger(__name__)

BackendName = Literal["auto", "cpu", "gsplat"]


@dataclass
class RenderSettings:
    backend: BackendName = "auto"
    near_m: float = 0.01  # Gaussians whose camera-space depth is below this are culled
    far_m: float = 1e10  # ... or above this
    background: Optional[tuple[float, ...]] = None  # RGB in [0,1]; None = black
    sh_degree: Optional[int] = None  # evaluate up to this degree; None = the Gaussians' degree
    render_features: bool = True  # rasterise Gaussians.features when present
    eps2d: float = 0.3  # screen-space dilation in pixels^2 added to the 2D covariance diagonal
    tile_size: Optional[int] = None  # pixels per tile side; None = the backend's best (cpu 8, gsplat 16)
    # divide the blended colour by the pixel's alpha (where alpha >= NORMALIZE_MIN_ALPHA), as a normalised
    # convolution does: sub-pixel Gaussians that only partly cover a pixel still give its full colour
    normalize_rgb: bool = False
    fill_rings: int = 0  # with normalize_rgb: empty pixels take the mean of their covered 3x3 neighbours, N rings


@dataclass
class RenderOutput:
    rgb: Tensor  # [V, H, W, 3]
    depth: Tensor  # [V, H, W], expected depth in metres (0 where alpha == 0)
    alpha: Tensor  # [V, H, W]
    features: Optional[Tensor] = None  # [V, H, W, D]
    backend: str = ""  # which backend produced it


NORMALIZE_MIN_ALPHA = 1e-3  # below this a pixel counts as empty and keeps the background
# Cracks where no sub-pixel footprint landed (depth-sensor holes, a closer or more oblique view than the
# contexts') are filled from their neighbours, as the forward-warp baseline fills its own.
OBSERVED_FILL_RINGS = 2


def colour_settings(settings: RenderSettings, observed: bool) -> RenderSettings:
    """The settings a model's colour set is rendered with: `colour_gaussians: observed` sets (sub-pixel
    footprints) without screen-space dilation, which would blur each pixel into its neighbours, and
    normalised by alpha; learned sets as given."""
    return replace(settings, eps2d=0.0, normalize_rgb=True, fill_rings=OBSERVED_FILL_RINGS) if observed else settings


def _normalized(out: RenderOutput, settings: RenderSettings) -> RenderOutput:
    alpha = out.alpha[..., None]  # [V, H, W, 1]
    covered = alpha >= NORMALIZE_MIN_ALPHA
    rgb = out.rgb
    if settings.background is not None:  # take the background's share out before dividing
        bg = torch.as_tensor(settings.background, dtype=rgb.dtype, device=rgb.device)
        rgb = rgb - (1.0 - alpha) * bg
        empty = bg.expand_as(rgb)
    else:
        empty = torch.zeros_like(rgb)
    rgb = torch.where(covered, rgb / alpha.clamp_min(NORMALIZE_MIN_ALPHA), empty)
    if settings.fill_rings > 0:
        rgb = _fill_empty(rgb, covered[..., 0], settings.fill_rings)
    out.rgb = rgb
    return out


def _fill_empty(rgb: Tensor, covered: Tensor, rings: int) -> Tensor:
    """rgb [V, H, W, 3] with covered [V, H, W] bool: each empty pixel with a covered 3x3 neighbour takes their
    mean, `rings` times (later rings read the pixels filled before them)."""
    image = rgb.permute(0, 3, 1, 2)  # [V, 3, H, W]
    mask = covered[:, None].to(rgb.dtype)  # [V, 1, H, W]
    for _ in range(rings):
        weight = torch.nn.functional.avg_pool2d(mask, 3, 1, 1, count_include_pad=False)
        mean = torch.nn.functional.avg_pool2d(image * mask, 3, 1, 1, count_include_pad=False) / weight.clamp_min(1e-6)
        reached = (mask == 0) & (weight > 0)
        image = torch.where(reached, mean, image)
        mask = torch.where(reached, torch.ones_like(mask), mask)
    return image.permute(0, 2, 3, 1)


# name -> "module:function"; each function has the signature fn(gaussians, cameras, settings) -> RenderOutput
_BACKENDS: dict[str, str] = {
    "cpu": "gssplat_ros.render.cpu:render_cpu",
    "gsplat": "gssplat_ros.render.gsplat_backend:render_gsplat",
}
_resolved: dict[str, Callable] = {}
_auto_logged = False


def _load(name: str) -> Callable:
    if name not in _resolved:
        module, func = _BACKENDS[name].split(":")
        _resolved[name] = getattr(importlib.import_module(module), func)
    return _resolved[name]


def gsplat_usable() -> tuple[bool, str]:
    """(usable, reason): gsplat needs CUDA and the gsplat package."""
    if not torch.cuda.is_available():
        return False, "CUDA is not available"
    if importlib.util.find_spec("gsplat") is None:
        return False, "the gsplat package is not installed"
    return True, "CUDA and gsplat are available"


def available_backends() -> list[str]:
    """Backends that can run on this machine, fastest first."""
    names = []
    if gsplat_usable()[0]:
        names.append("gsplat")
    if importlib.util.find_spec("numba") is not None:
        names.append("cpu")
    return names


def check_backend(name: str) -> None:
    """Raise ValueError naming what is missing when backend `name` cannot run here (auto always can:
    it falls back to cpu, whose numba import is checked)."""
    if name == "gsplat":
        ok, why = gsplat_usable()
        if not ok:
            raise ValueError(f"render_backend 'gsplat' cannot run: {why} (use render_backend 'auto' or 'cpu')")
    elif name in ("cpu", "auto") and importlib.util.find_spec("numba") is None:
        raise ValueError(f"render_backend {name!r} needs numba for the CPU renderer: pip install numba")
    elif name not in ("cpu", "auto") and name not in _BACKENDS:
        raise ValueError(f"unknown renderer backend {name!r}; choose from auto, {', '.join(_BACKENDS)}")


def resolve_backend(name: str, device: Optional[torch.device] = None) -> str:
    """Map `auto` to a concrete backend (logging once which and why); validate other names."""
    global _auto_logged
    if name == "auto":
        ok, why = gsplat_usable()
        on_cuda = device is None or device.type == "cuda"
        chosen = "gsplat" if ok and on_cuda else "cpu"
        if not _auto_logged:
            reason = why if not ok else ("the data is on the CPU" if not on_cuda else why)
            log.info("renderer backend 'auto' -> '%s' (%s)", chosen, reason)
            _auto_logged = True
        return chosen
    if name not in _BACKENDS:
        raise ValueError(f"unknown renderer backend {name!r}; choose from auto, {', '.join(_BACKENDS)}")
    return name


def render(
    gaussians: Gaussians, cameras: Cameras, settings: Optional[RenderSettings] = None
) -> RenderOutput:
    """Rasterise Gaussians into every camera; differentiable w.r.t. all Gaussian attributes.

    Args:
        gaussians: N Gaussians in the world frame.
        cameras: V cameras (OpenCV axes, camera-to-world poses, K in pixels).
        settings: backend and blending options; defaults to RenderSettings().

    Returns:
        RenderOutput with rgb [V,H,W,3], depth [V,H,W], alpha [V,H,W] and features [V,H,W,D] or None.
    """
    settings = settings or RenderSettings()
    backend = resolve_backend(settings.backend, gaussians.device)
    out = _load(backend)(gaussians, cameras, settings)
    if settings.normalize_rgb:
        out = _normalized(out, settings)
    out.backend = backend
    return out
