"""Evaluation: `gssplat eval --data DIR --format scannet --views 4 --json out.json [--images DIR]`.

The S-Ray / GSNeRF protocol, per target image then averaged: PSNR and SSIM (on pixels with valid GT
depth by default), mIoU, total accuracy and class-average accuracy over the classes present in the GT
(ignore label excluded), plus depth AbsRel of the depth the Gaussians were built from (context views;
estimated-depth models only, a sensor-depth model's input depth is the ground truth) and of the rendered
depth (targets). Speed: milliseconds per query (encoder + rendering one target),
device-synchronised, the first `warmup` queries discarded. Every protocol choice is printed.

Beside the model, a forward-warp baseline (baselines.py: the same context views' RGB-D splatted into the
query, z-buffered, sub-pixel, small holes filled) is scored on the same pixels and reported as its own row:
the bar the model has to clear. In estimated-depth mode it is warped twice, with the model's estimated depth
and with the sensor depth. Scenes without labels score PSNR/SSIM/depth only ("no labels"); `split="auto"`
evaluates every scene of a folder that names no test split; `min_baseline_m` / `min_baseline_deg` keep
near-duplicate frames out of the context; `context_rerender` adds the colour Gaussians' PSNR in their own
context views. The aggregate `metrics` hold metrics only (MODEL_METRIC_KEYS, the interval, speed, count).

The headline metrics also get a 95% interval from a bootstrap over scenes (images of one scene share
its room, so they are resampled together). It says how far one run's figure can be trusted: on 8
generated test rooms (16 images) the shipped sensor model's mIoU interval is about 0.14 wide.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gssplat_ros.baselines import forward_warp
from gssplat_ros.cameras import Cameras, translate_poses
from gssplat_ros.data import PALETTE, WindowDataset
from gssplat_ros.data.windows import REPLICA_TEST, list_scenes
from gssplat_ros.metrics import Protocol, average_metrics, describe_protocol, image_metrics, psnr, semantic_metrics
from gssplat_ros.model.heads import close_offset_gates
from gssplat_ros.prediction import EncoderInputs, Prediction
from gssplat_ros.render import RenderSettings, colour_settings, render
from gssplat_ros.runtime_factory import make_runtime

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    data: str
    format: str = "scannet"
    split: str = "auto"  # auto: "test" where the folder names one (split files, Replica), else every scene
    views: int = 4
    width: int = 320
    height: int = 240
    depth: str = "sensor"  # sensor | estimated
    checkpoint: str = ""  # "" = the shipped weights for `depth`
    runtime: str = "torch"
    precision: str = "auto"  # of the exported graph (onnxruntime, tensorrt); auto: the runtime's default
    device: str = "auto"
    render_backend: str = "auto"
    context_stride: int = 1  # 1: the V nearest frames; 5: GSNeRF's every-5th candidates
    rgb_mask: str = "valid-depth"  # valid-depth | all
    max_targets: int = 10  # per scene (targets at frames 2::20, GSNeRF)
    warmup: int = 2
    images: str = ""  # write side-by-side PNGs here
    ablate_offsets: bool = False  # inference-time ablation: every offset gate closed (centres = unprojected depth)
    ablate_aggregation: bool = False  # inference-time ablation: skip the cross-view spatial-unit aggregation
    ablate_geometry: bool = False  # inference-time ablation: no world-geometry cues into the semantic branch
    world_shift_z: float = 0.0  # robustness probe: move the world origin this many metres down (poses z += shift)
    min_baseline_m: float = 0.0  # contexts closer to the query than this (and than min_baseline_deg) are not used
    min_baseline_deg: float = 0.0
    context_rerender: bool = False  # also render the colour Gaussians back into their own context views
    semantic_scales: str = "auto"  # class logits averaged over these image scales ("auto": runtime/semantic_scales.py)


def apply_ablations(runtime, cfg: EvalConfig) -> None:
    """Switch parts of a trained torch model off at inference (the same weights, no retraining)."""
    if not (cfg.ablate_offsets or cfg.ablate_aggregation or cfg.ablate_geometry):
        return
    net = getattr(runtime, "net", None)
    if net is None:
        raise ValueError("ablations need the torch runtime (--runtime torch)")
    if cfg.ablate_aggregation:
        net.cfg = net.cfg.replace(aggregate=False)
    if cfg.ablate_geometry:
        if net.semantic_geometry is None:
            raise ValueError("--ablate-geometry: this model has no geometry cues (semantic_geometry is off)")
        net.semantic_geometry = None
    if cfg.ablate_offsets:
        close_offset_gates(net)


def shift_world_z(batch: dict, shift_m: float) -> dict:
    """The window with every camera `shift_m` higher in the world (the floor is then at z = shift_m).

    Renders are unchanged by such a shift (all poses move together); only what depends on the world
    origin does: the semantic branch's height cues (model/semantic_geometry.py) assume the floor at z = 0,
    and this measures how much their predictions suffer when a robot's world frame puts it elsewhere.
    """
    if not shift_m:
        return batch
    out = dict(batch)
    offset = torch.tensor([0.0, 0.0, shift_m])
    for key in ("context_world_from_cam", "target_world_from_cam"):
        out[key] = translate_poses(batch[key], offset)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    valid = (gt > 0) & np.isfinite(pred) & (pred > 0)
    return float(np.mean(np.abs(pred[valid] - gt[valid]) / gt[valid])) if valid.any() else float("nan")


def open_runtime(cfg: EvalConfig):
    """The encoder runtime `cfg` asks for, with its ablations applied (ValueError for the wrong depth mode)."""

    runtime = make_runtime(cfg.runtime, cfg.checkpoint, cfg.depth, cfg.device, cfg.views, cfg.width, cfg.height,
                           semantic_scales=cfg.semantic_scales, precision=cfg.precision)
    if runtime.info.depth_mode != cfg.depth:
        raise ValueError(f"the checkpoint is a {runtime.info.depth_mode}-depth model but --depth {cfg.depth} was asked")
    apply_ablations(runtime, cfg)
    return runtime


def render_queries(cfg: EvalConfig, runtime, split: Optional[str] = None):
    """Each query of the protocol, predicted and rendered: yields (batch, prediction, colour render,
    semantic render, ms) with ms = encoder + both renders, device-synchronised."""

    device = runtime.info.device
    dataset = WindowDataset(cfg.data, cfg.format, split=split or resolved_split(cfg), views=cfg.views, targets=1,
                            size=(cfg.width, cfg.height), context_stride=cfg.context_stride,
                            max_targets=cfg.max_targets, min_baseline_m=cfg.min_baseline_m,
                            min_baseline_deg=cfg.min_baseline_deg)
    settings = RenderSettings(backend=cfg.render_backend)
    for i in range(len(dataset)):
        b = shift_world_z(dataset[i], cfg.world_shift_z)
        cams_ctx = Cameras(b["context_K"], b["context_world_from_cam"], cfg.width, cfg.height)
        depth_in = b["context_depth"] if cfg.depth == "sensor" else None
        inputs = EncoderInputs.from_cameras(b["context_images"], cams_ctx, depth_in)
        target = Cameras(b["target_K"], b["target_world_from_cam"], cfg.width, cfg.height).to(device)
        _sync(device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            pred = Prediction.from_outputs(runtime(inputs), runtime.info.colour_gaussians)
            color = render(pred.color, target, colour_settings(settings, pred.observed_colour))
            sem = render(pred.semantic, target, settings)
        _sync(device)
        yield b, pred, color, sem, (time.perf_counter() - t0) * 1e3


def default_split(root: str, format: str) -> str:
    """"test" where the folder says which scenes are test (split files, Replica's paper scenes), else "all".

    A plain folder of scenes (a real capture, someone else's rooms) has no held-out split of its own: every
    scene of it is new to the model, so all of them are evaluated rather than the last 15 % by name.
    """

    listing = Path(root) / "splits"
    if listing.is_dir() and any((listing / f"{s}.txt").exists() for s in ("train", "val", "test")):
        return "test"
    if format == "replica" and set(REPLICA_TEST) <= set(list_scenes(root, format)):
        return "test"
    return "all"


def resolved_split(cfg: EvalConfig) -> str:
    return default_split(cfg.data, cfg.format) if cfg.split == "auto" else cfg.split


def warp_rows(cfg: EvalConfig) -> dict[str, str]:
    """{row key: label} of the forward-warp baselines: the depth the model got (sensor, or its estimate) and,
    for an estimated-depth model, the sensor depth too."""
    if cfg.depth == "sensor":
        return {"warp_sensor": "forward warp (sensor depth)"}
    return {"warp_estimated": "forward warp (model's estimated depth)", "warp_sensor": "forward warp (sensor depth)"}


def score_warps(cfg: EvalConfig, b: dict, pred: Prediction, gt_rgb, mask, protocol: Protocol) -> dict[str, dict]:
    """{row key: {"psnr", "ssim", "coverage"}}: the context views forward-warped into the query, scored on the
    model's pixels. coverage: the share of the scored pixels the warp reached (the rest stay 0, as the model's
    background)."""

    depths = {"warp_sensor": b["context_depth"][:, 0]}
    if "warp_estimated" in warp_rows(cfg):
        depths["warp_estimated"] = pred.depth.float().cpu()
    rows = {}
    for key, depth in depths.items():
        rgb, covered = forward_warp(b["context_images"], depth, b["context_K"], b["context_world_from_cam"],
                                    b["target_K"][0], b["target_world_from_cam"][0], cfg.width, cfg.height)
        row = image_metrics(rgb, gt_rgb, mask, protocol)
        scored = mask if mask is not None else np.ones(covered.shape, bool)
        row["coverage"] = float(covered[scored].mean()) if scored.any() else float("nan")
        rows[key] = row
    return rows


def context_rerender_psnr(pred: Prediction, b: dict, cfg: EvalConfig, device, protocol: Protocol) -> float:
    """Mean PSNR of the colour Gaussians rendered back into their own context cameras, on valid-depth pixels:
    how much of what the camera saw the Gaussians keep."""
    cams = Cameras(b["context_K"], b["context_world_from_cam"], cfg.width, cfg.height).to(device)
    with torch.inference_mode():
        out = render(pred.color, cams, colour_settings(RenderSettings(backend=cfg.render_backend), pred.observed_colour))
    values = []
    for v in range(len(cams)):
        rgb = out.rgb[v].clamp(0, 1).float().cpu().numpy()
        gt = b["context_images"][v].permute(1, 2, 0).numpy()
        values.append(psnr(rgb, gt, b["context_depth"][v, 0].numpy() > 0, protocol.quantize))
    return float(np.nanmean(values))


def has_labels(labels: np.ndarray, protocol: Protocol) -> bool:
    return bool(((labels >= 0) & (labels < protocol.num_classes)).any())


def evaluate(cfg: EvalConfig) -> dict:
    runtime = open_runtime(cfg)
    device = runtime.info.device
    protocol = Protocol(num_classes=runtime.info.num_classes)
    split = resolved_split(cfg)
    per_image, times_ms = [], []
    baselines: dict[str, list[dict]] = {key: [] for key in warp_rows(cfg)}
    labelled = False
    if cfg.images:
        Path(cfg.images).mkdir(parents=True, exist_ok=True)
    for i, (b, pred, color, sem, ms) in enumerate(render_queries(cfg, runtime, split)):
        if i >= cfg.warmup:
            times_ms.append(ms)
        rgb = color.rgb[0].clamp(0, 1).float().cpu().numpy()
        labels = sem.features[0].argmax(-1).cpu().numpy()
        gt_rgb = b["target_images"][0].permute(1, 2, 0).numpy()
        gt_depth = b["target_depth"][0].numpy()
        gt_labels = b["target_labels"][0].numpy()
        mask = gt_depth > 0 if cfg.rgb_mask == "valid-depth" else None
        m = image_metrics(rgb, gt_rgb, mask, protocol)
        if has_labels(gt_labels, protocol):
            labelled = True
            m.update(semantic_metrics(labels, gt_labels, protocol.num_classes, protocol.ignore_index))
        rendered_depth = color.depth[0].float().cpu().numpy()
        m["render_depth_absrel"] = abs_rel(np.where(color.alpha[0].cpu().numpy() > 0.5, rendered_depth, 0), gt_depth)
        if cfg.depth == "estimated":  # in sensor mode the context depth is the ground truth itself
            m["depth_absrel"] = abs_rel(pred.depth.float().cpu().numpy(), b["context_depth"][:, 0].numpy())
        if cfg.context_rerender:
            m["context_psnr"] = context_rerender_psnr(pred, b, cfg, device, protocol)
        for key, row in score_warps(cfg, b, pred, gt_rgb, mask, protocol).items():
            baselines[key].append(row)
            m.update({f"{key}_{k}": v for k, v in row.items()})
        m["scene"], m["target"] = b["scene"], int(b["target_indices"][0])
        m["context"] = [int(c) for c in b["context_indices"]]
        per_image.append(m)
        if cfg.images:
            _save_sheet(Path(cfg.images) / f"{b['scene']}_{int(b['target_indices'][0]):04d}.png", b, rgb, labels,
                        rendered_depth, color.alpha[0].cpu().numpy())
    averaged = average_metrics(per_image)
    summary = {k: averaged[k] for k in MODEL_METRIC_KEYS if k in averaged}
    summary["ci95"] = {k: scene_bootstrap_interval(per_image, k) for k in INTERVAL_KEYS if k in summary}
    names = runtime.info.class_names or tuple(map(str, range(protocol.num_classes)))
    per_class = per_class_iou(per_image, names) if labelled else []
    summary["ms_per_query"] = float(np.median(times_ms)) if times_ms else float("nan")
    summary["num_images"] = len(per_image)
    baseline_rows = {key: {"label": label, **{k: v for k, v in average_metrics(baselines[key]).items()
                                               if k in ("psnr", "ssim", "coverage")}}
                     for key, label in warp_rows(cfg).items()}
    protocol_text = (describe_protocol(protocol) + f"; split: {split}; contexts: the {cfg.views} "
                     + ("nearest frames" if cfg.context_stride == 1 else f"nearest of every {cfg.context_stride}th frame")
                     + (f", at least {cfg.min_baseline_m:g} m" if cfg.min_baseline_m else "")
                     + (" and" if cfg.min_baseline_m and cfg.min_baseline_deg else "")
                     + (f" at least {cfg.min_baseline_deg:g} deg" if cfg.min_baseline_deg else "")
                     + (" from the query" if cfg.min_baseline_m or cfg.min_baseline_deg else "")
                     + f"; RGB mask: {cfg.rgb_mask}"
                     + "; semantic scales: " + ", ".join(f"{s:g}" for s in getattr(runtime, "scales", (1.0,)))
                     + ("" if labelled else "; no labels: semantics not scored")
                     + "; forward warp: context RGB-D splatted into the query (z-buffer, bilinear, 3x3 hole fill), "
                       "same pixels"
                     + ("; ablation: offsets off" if cfg.ablate_offsets else "")
                     + ("; ablation: aggregation off" if cfg.ablate_aggregation else "")
                     + ("; ablation: geometry cues off" if cfg.ablate_geometry else "")
                     + (f"; world origin moved: floor at z = {cfg.world_shift_z:g} m" if cfg.world_shift_z else ""))
    images = [{k: v for k, v in m.items() if not isinstance(v, dict) and k != "ious"} for m in per_image]
    return {"config": asdict(cfg), "protocol": protocol_text, "runtime": runtime.info.name, "device": str(device),
            "labels": labelled, "metrics": summary, "baselines": baseline_rows, "per_class": per_class,
            "images": images}


# The aggregate `metrics` of a result: measured quality and speed only (never frame indices or pixel counts).
MODEL_METRIC_KEYS = ("psnr", "ssim", "miou", "total_accuracy", "class_average_accuracy", "depth_absrel",
                     "render_depth_absrel", "context_psnr")


INTERVAL_KEYS = ("psnr", "miou", "depth_absrel", "render_depth_absrel")


def scene_bootstrap_interval(per_image: list[dict], key: str, resamples: int = 2000, seed: int = 0) -> list[float]:
    """[low, high]: the 2.5th and 97.5th percentiles of the image mean of `key` over `resamples` draws of the
    scenes with replacement (each draw keeps every image of a drawn scene); NaNs skipped as in the mean.

    [nan, nan] when no image has a finite value. Deterministic in `seed`.
    """
    by_scene: dict[str, list[float]] = {}
    for m in per_image:
        value = m.get(key, float("nan"))
        if np.isfinite(value):
            by_scene.setdefault(str(m.get("scene", "")), []).append(float(value))
    if not by_scene:
        return [float("nan"), float("nan")]
    sums = np.array([sum(v) for v in by_scene.values()])  # [S]
    counts = np.array([len(v) for v in by_scene.values()])  # [S]
    draws = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))  # [R, S]
    means = sums[draws].sum(1) / counts[draws].sum(1)  # [R]
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def per_class_iou(per_image: list[dict], class_names) -> list[dict]:
    """Each class's IoU averaged over the images whose ground truth has it (the mIoU's own terms), most seen first."""
    ious = np.array([m["ious"] for m in per_image if "ious" in m], dtype=np.float64).reshape(-1, len(class_names))
    rows = []
    for c, name in enumerate(class_names):
        seen = ious[:, c][~np.isnan(ious[:, c])]
        if len(seen):
            rows.append({"class": name, "iou": float(seen.mean()), "images": int(len(seen))})
    return sorted(rows, key=lambda r: (-r["images"], r["class"]))


def _save_sheet(path: Path, b: dict, rgb, labels, depth, alpha) -> None:
    from PIL import Image

    def u8(x):
        return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)

    ctx = u8(b["context_images"][0].permute(1, 2, 0).numpy())
    gt = u8(b["target_images"][0].permute(1, 2, 0).numpy())
    lab = PALETTE[np.clip(labels, 0, len(PALETTE) - 1)]
    gt_lab = PALETTE[b["target_labels"][0].numpy()]
    d = np.where(alpha > 0.5, depth, 0.0)
    d = u8(d / max(float(d.max()), 1e-6))
    tiles = [ctx, u8(rgb), gt, lab, gt_lab, np.repeat(d[..., None], 3, -1)]
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path)


def format_table(result: dict) -> str:
    """The printed result: protocol, one row for the model and one per forward-warp baseline, intervals, and
    the per-class IoU (or "no labels")."""
    m = result["metrics"]
    labelled = result.get("labels", True)
    keys = [("PSNR", "psnr", ".2f"), ("SSIM", "ssim", ".3f")]
    if labelled:
        keys += [("mIoU", "miou", ".3f"), ("total acc", "total_accuracy", ".3f"),
                 ("class acc", "class_average_accuracy", ".3f")]
    keys += [("depth AbsRel", "depth_absrel", ".3f"), ("render depth AbsRel", "render_depth_absrel", ".3f")]
    if "context_psnr" in m:
        keys.append(("context re-render PSNR", "context_psnr", ".2f"))
    keys += [("coverage", "coverage", ".3f"), ("ms/query", "ms_per_query", ".0f")]

    def cells(values: dict) -> str:
        return " | ".join(format(values[key], fmt) if key in values else "-" for _, key, fmt in keys)

    head = "| row | " + " | ".join(k for k, _, _ in keys) + " | images |"
    precision = result["config"].get("precision", "auto")
    lines = [f"protocol: {result['protocol']}", f"runtime: {result['runtime']} ({precision}) on {result['device']}",
             head, "|" + "---|" * (len(keys) + 2), f"| model | {cells(m)} | {m['num_images']} |"]
    for row in (result.get("baselines") or {}).values():
        lines.append(f"| {row['label']} | {cells(row)} | {m['num_images']} |")
    intervals = m.get("ci95") or {}
    if intervals:
        spans = [(f"{format(intervals[key][0], fmt)}-{format(intervals[key][1], fmt)}"
                  if key in intervals and key in m else "") for _, key, fmt in keys]
        lines.append("| model 95% (scenes resampled) | " + " | ".join(spans) + " | |")
    if not labelled:
        lines += ["", "no labels: the scenes have no semantic ground truth, so no mIoU / accuracy"]
    elif result.get("per_class"):
        lines += ["", "per-class IoU (mean over the images that contain the class):", "| class | IoU | images |",
                  "|---|---|---|"]
        lines += [f"| {r['class']} | {r['iou']:.3f} | {r['images']} |" for r in result["per_class"]]
    return "\n".join(lines)


def write_json(result: dict, path: Optional[str]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2))
