"""Where does a context view's colour get lost? Re-render each context view from the predicted colour
Gaussians and switch one suspect off at a time.

Usage (rooms from `gssplat data generate --out ROOMS --scenes 3 --frames 24 --size 160x120 --seed 2701`):
    python tools/colour_diagnosis.py --data ROOMS [--checkpoint STEM] [--views 4] [--size 160x120]
        [--max-targets 2] [--json out.json] [--footprint-oracle | --as-rendered]

For every window and every appearance variant of its images (original; colour channels permuted; another
white balance; another palette, the colours inverted; a darker exposure) it prints the mean PSNR of the context
views re-rendered from:
    model          the prediction as is
    dc=observed    (a) every Gaussian's colour replaced by the colour its pixel observed
    opaque         (b) every valid Gaussian's opacity set to 1
    no-agg         (c) the same weights without the cross-view voxel aggregation
    own-view       (d) only the view's own Gaussians (no occlusion by the other views')
    no-offsets     (e) centres at the unprojected depth
    all-of-a,b,d   dc=observed + opaque + own-view: what the splats' footprint alone loses
    tiny-scales    (b) every scale shrunk to 0.1 pixel (the rasteriser's 0.3 px^2 dilation stays)
    fit-N          DC colours fitted by N Richardson steps towards re-rendering the contexts exactly
    no-dilation    the model's Gaussians rendered without the rasteriser's 0.3 px^2 anti-aliasing dilation
    half-scale     ... and every scale halved
and, for the held-out query view of each window (novel view), the same model / no-dilation / half-scale.
`--as-rendered` prints only the checkpoint's colour set rendered as the node and `gssplat eval` render it
(its own ModelConfig.colour_gaussians and render.colour_settings): context re-render and query PSNR per variant.
Otherwise it also prints the residual's size (mean |DC colour - observed| in 8-bit levels, and the per-pixel DC colour's PSNR
against the observation, no rendering), mean opacity and the scales in pixels (scale * f / depth).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from gssplat_ros.cameras import Cameras
from gssplat_ros.gaussians import SH_C0, Gaussians, rgb_to_sh_dc
from gssplat_ros.metrics import psnr
from gssplat_ros.prediction import Prediction
from gssplat_ros.render import RenderSettings, colour_settings, render

FIT_STEPS = (1, 3)
COLOUR_RANGE = (0.0, 1.5)  # fitted DC colours may overshoot 1 to deblur; the renderers clamp below 0 anyway
VARIANTS = {
    "original": lambda x: x,
    "permuted": lambda x: x[:, [2, 0, 1]],  # [V, 3, H, W]: RGB -> BRG
    "white-balance": lambda x: (x * torch.tensor([1.3, 1.0, 0.65])[:, None, None]).clamp(0, 1),
    "palette": lambda x: 1.0 - x,  # inverted: dark walls, light shadows
    "exposure": lambda x: x * 0.45,
}


def fit_context_colours(gaussians: Gaussians, cameras: Cameras, images: Tensor, valid: Tensor, iterations: int = 3,
                        settings: RenderSettings = RenderSettings()) -> Gaussians:
    """The colour set with its DC colours moved by Richardson steps c <- c + (observed - R(c)) towards
    rendering `cameras` as `images` (a candidate fix measured here: it does not converge, see the doc).

    Args:
        gaussians: the colour Gaussians of V context views, view-major (V blocks of H*W, one per pixel), the
            layout `Prediction.from_outputs` gives.
        cameras: the V context cameras (H, W of the images).
        images: [V, 3, H, W] the observed colours in 0-1.
        valid: [V, H, W] bool, pixels with depth (the others have no Gaussian to fit).
        iterations: Richardson steps (0: unchanged).
    """
    V, _, H, W = images.shape
    if len(gaussians) != V * H * W or len(cameras) != V:
        raise ValueError(f"fit_context_colours needs one Gaussian per pixel of {V} views of {W}x{H}, got "
                         f"{len(gaussians)} Gaussians and {len(cameras)} cameras")
    observed = images.permute(0, 2, 3, 1).reshape(-1, 3).to(gaussians.sh)  # [N, 3]
    mask = valid.reshape(-1, 1).to(observed.device)  # [N, 1]
    colour = gaussians.sh[:, 0] * SH_C0 + 0.5  # [N, 3]
    for _ in range(max(0, int(iterations))):
        g = replace(gaussians, sh=torch.cat([((colour - 0.5) / SH_C0)[:, None], gaussians.sh[:, 1:]], 1))
        rendered = render(g, cameras, settings).rgb.reshape(-1, 3).to(colour)  # [N, 3]
        colour = torch.where(mask, colour + (observed - rendered), colour).clamp(*COLOUR_RANGE)
    return replace(gaussians, sh=torch.cat([((colour - 0.5) / SH_C0)[:, None], gaussians.sh[:, 1:]], 1))


def rerender_psnr(g: Gaussians, cams: Cameras, images: torch.Tensor, valid: torch.Tensor, settings) -> float:
    """Mean PSNR of g rendered into every camera of `cams` against images [V, 3, H, W] on valid [V, H, W]."""
    out = render(g, cams, settings)
    return float(np.mean([psnr(out.rgb[v].clamp(0, 1).numpy(), images[v].permute(1, 2, 0).numpy(), valid[v].numpy())
                          for v in range(len(cams))]))


def own_view_psnr(g: Gaussians, cams: Cameras, images, valid, settings) -> float:
    """Each view rendered from only its own pixels' Gaussians (the set is view-major: V blocks of H*W)."""
    per_view = len(g) // len(cams)
    return float(np.mean([rerender_psnr(g[v * per_view:(v + 1) * per_view], cams[v], images[v:v + 1],
                                        valid[v:v + 1], settings) for v in range(len(cams))]))


def as_rendered(net, b: dict, images: Tensor, query_image: Tensor, settings) -> dict:
    """Context re-render and query PSNR of the checkpoint's colour set under its own render settings, for the
    context images `images` [V, 3, H, W] and query image [1, 3, H, W] of one appearance variant."""
    V, _, H, W = images.shape
    cams = Cameras(b["context_K"], b["context_world_from_cam"], W, H)
    query = Cameras(b["target_K"], b["target_world_from_cam"], W, H)
    depth = b["context_depth"]  # [V, 1, H, W]
    with torch.inference_mode():
        out = net(images, cams.K, cams.world_from_cam, cams.cam_from_world, depth)
        pred = Prediction.from_outputs(out, net.cfg.colour_gaussians)
        own = colour_settings(settings, pred.observed_colour)
        return {"context": rerender_psnr(pred.color, cams, images, depth[:, 0] > 0, own),
                "query": rerender_psnr(pred.color, query, query_image, b["target_depth"] > 0, own)}


def diagnose_window(net, b: dict, images: torch.Tensor, query_image: torch.Tensor, settings) -> dict:
    """The measurements of one window whose context images are `images` [V, 3, H, W] (an appearance variant)
    and whose query view, in the same variant, is `query_image` [1, 3, H, W]."""
    V, _, H, W = images.shape
    cams = Cameras(b["context_K"], b["context_world_from_cam"], W, H)
    depth = b["context_depth"]  # [V, 1, H, W]
    valid = depth[:, 0] > 0  # [V, H, W]
    with torch.inference_mode():
        out = net(images, cams.K, cams.world_from_cam, cams.cam_from_world, depth)
        g = Prediction.from_outputs(out).color
        observed_dc = rgb_to_sh_dc(images.permute(0, 2, 3, 1).reshape(-1, 1, 3))  # [N, 1, 3]
        dc = g.sh[:, :1]  # [N, 1, 3]
        flat_valid = valid.reshape(-1)
        diff = ((dc - observed_dc) * SH_C0).abs()[flat_valid]  # colour units
        dc_rgb = (dc[:, 0] * SH_C0 + 0.5).reshape(V, H, W, 3)
        pixel_scale = (g.scales.mean(-1) * cams.K[:, 0, 0].repeat_interleave(H * W)
                       / depth.reshape(-1).clamp_min(1e-6))[flat_valid]  # [n] pixels
        opaque = replace(g, opacities=torch.where(flat_valid, torch.ones_like(g.opacities), g.opacities))
        dc_obs = replace(g, sh=torch.cat([observed_dc, g.sh[:, 1:]], 1))
        no_off = replace(g, means=out["means0"].reshape(-1, 3))
        combined = replace(dc_obs, opacities=opaque.opacities)
        footprint = (depth.reshape(-1) / cams.K[:, 0, 0].repeat_interleave(H * W))[:, None]  # [N, 1] m per pixel
        tiny = replace(g, scales=torch.full_like(g.scales, 0.1) * footprint)
        half = replace(g, scales=g.scales * 0.5)
        sharp = replace(settings, eps2d=0.0)
        query = Cameras(b["target_K"], b["target_world_from_cam"], W, H)
        query_valid = b["target_depth"] > 0  # [1, H, W]
        fitted = {n: fit_context_colours(g, cams, images, valid, n, settings) for n in FIT_STEPS}
        agg = net.cfg
        net.cfg = agg.replace(aggregate=False)
        try:
            g_noagg = Prediction.from_outputs(net(images, cams.K, cams.world_from_cam, cams.cam_from_world,
                                                  depth)).color
        finally:
            net.cfg = agg
        return {
            "model": rerender_psnr(g, cams, images, valid, settings),
            "dc=observed": rerender_psnr(dc_obs, cams, images, valid, settings),
            "opaque": rerender_psnr(opaque, cams, images, valid, settings),
            "no-agg": rerender_psnr(g_noagg, cams, images, valid, settings),
            "own-view": own_view_psnr(g, cams, images, valid, settings),
            "no-offsets": rerender_psnr(no_off, cams, images, valid, settings),
            "all-of-a,b,d": own_view_psnr(combined, cams, images, valid, settings),
            "tiny-scales": rerender_psnr(tiny, cams, images, valid, settings),
            **{f"fit-{n}": rerender_psnr(f, cams, images, valid, settings) for n, f in fitted.items()},
            "no-dilation": rerender_psnr(g, cams, images, valid, sharp),
            "half-scale": rerender_psnr(half, cams, images, valid, sharp),
            "query:model": rerender_psnr(g, query, query_image, query_valid, settings),
            "query:no-dilation": rerender_psnr(g, query, query_image, query_valid, sharp),
            "query:half-scale": rerender_psnr(half, query, query_image, query_valid, sharp),
            "dc_residual_levels": float(diff.mean() * 255),
            "dc_psnr": float(np.mean([psnr(dc_rgb[v].numpy(), images[v].permute(1, 2, 0).numpy(), valid[v].numpy())
                                      for v in range(V)])),
            "opacity_mean": float(g.opacities[flat_valid].mean()),
            "opacity_below_0.5": float((g.opacities[flat_valid] < 0.5).float().mean()),
            "scale_px_median": float(pixel_scale.median()),
        }


def footprint_oracle(b: dict, settings: RenderSettings) -> dict[str, float]:
    """PSNR of each context view re-rendered from ideal Gaussians (its exact colours at its unprojected
    pixels, opacity 1, isotropic, only its own) by footprint: scale (pixels) x rasteriser dilation (px^2)."""
    from gssplat_ros.model.geometry import unproject_maps

    images, depth, K, poses = b["context_images"], b["context_depth"], b["context_K"], b["context_world_from_cam"]
    V, _, H, W = images.shape
    out = {}
    for scale_px in (0.1, 0.3, 0.5, 0.9):
        for dilation in (0.3, 0.0):
            values = []
            for v in range(V):
                means = unproject_maps(K[v:v + 1], depth[v:v + 1, 0], poses[v:v + 1]).permute(0, 2, 3, 1).reshape(-1, 3)
                n = len(means)
                metres_per_px = (depth[v].reshape(-1) / K[v, 0, 0])[:, None]  # [n, 1]
                g = Gaussians(means=means, quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
                              scales=(metres_per_px * scale_px).repeat(1, 3),
                              opacities=(depth[v].reshape(-1) > 0).float(),
                              sh=rgb_to_sh_dc(images[v].permute(1, 2, 0).reshape(-1, 1, 3)))
                values.append(rerender_psnr(g, Cameras(K[v:v + 1], poses[v:v + 1], W, H), images[v:v + 1],
                                            depth[v:v + 1, 0] > 0, replace(settings, eps2d=dilation)))
            out[f"{scale_px:g} px, dilation {dilation:g}"] = float(np.mean(values))
    return out


def main(argv=None) -> int:
    from gssplat_ros.commands.eval_cmd import parse_size
    from gssplat_ros.data import WindowDataset
    from gssplat_ros.runtime_factory import make_runtime

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--checkpoint", default="", help="default: the shipped sensor weights")
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--max-targets", type=int, default=2, help="windows per scene")
    ap.add_argument("--footprint-oracle", action="store_true",
                    help="only the ideal-Gaussian re-render PSNR by scale and dilation (no network)")
    ap.add_argument("--as-rendered", action="store_true",
                    help="only the checkpoint's colour set under its own render settings (context and query PSNR)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    width, height = parse_size(args.size)
    runtime = make_runtime("torch", args.checkpoint, "sensor", "cpu", args.views, width, height)
    net = runtime.net.eval()
    settings = RenderSettings(backend="cpu")
    ds = WindowDataset(args.data, split="all", views=args.views, targets=1, size=(width, height), context_stride=1,
                       max_targets=args.max_targets)
    if args.footprint_oracle:
        per_window = [footprint_oracle(ds[i], settings) for i in range(len(ds))]
        print(f"ideal Gaussians (exact colours, opacity 1, own view only), {len(ds)} windows x {args.views} views")
        print("| footprint | re-render PSNR (dB) |\n|---|---|")
        for key in per_window[0]:
            print(f"| {key} | {np.mean([w[key] for w in per_window]):.2f} |")
        return 0
    rows: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    for i in range(len(ds)):
        b = ds[i]
        for name, transform in VARIANTS.items():
            measure = as_rendered if args.as_rendered else diagnose_window
            rows[name].append(measure(net, b, transform(b["context_images"]), transform(b["target_images"]), settings))
    table = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
    keys = list(next(iter(table.values())))
    print(f"context re-render PSNR (dB) and colour-Gaussian statistics, {len(ds)} windows, V={args.views}, "
          f"{width}x{height}, checkpoint: {args.checkpoint or 'shipped tiny_sensor'}")
    print("| variant | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, m in table.items():
        print(f"| {name} | " + " | ".join(f"{m[k]:.2f}" if "opacity" not in k else f"{m[k]:.3f}" for k in keys)
              + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"windows": len(ds), "table": table}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
