"""Evaluation: `gssplat eval --data DIR --format scannet --views 4 --json out.json [--images DIR]`.

The S-Ray / GSNeRF protocol, per target image then averaged: PSNR and SSIM (on pixels with valid GT
depth by default), mIoU, total accuracy and class-average accuracy over the classes present in the GT
(ignore label excluded), plus depth AbsRel of the depth the Gaussians were built from (context views;
estimated-depth models only, a sensor-depth model's input depth is the ground truth) and of the rendered
depth (targets). Speed: milliseconds per query (encoder + rendering one target),
device-synchronised, the first `warmup` queries discarded. Every protocol choice is printed.

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

from gssplat_ros.cameras import Cameras, translate_poses
from gssplat_ros.metrics import Protocol, average_metrics, describe_protocol, image_metrics, semantic_metrics
from gssplat_ros.prediction import EncoderInputs, Prediction
from gssplat_ros.render import RenderSettings, render

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    data: str
    format: str = "scannet"
    split: str = "test"
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
        from gssplat_ros.model.heads import close_offset_gates

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
    from gssplat_ros.runtime_factory import make_runtime

    runtime = make_runtime(cfg.runtime, cfg.checkpoint, cfg.depth, cfg.device, cfg.views, cfg.width, cfg.height,
                           semantic_scales=cfg.semantic_scales, precision=cfg.precision)
    if runtime.info.depth_mode != cfg.depth:
        raise ValueError(f"the checkpoint is a {runtime.info.depth_mode}-depth model but --depth {cfg.depth} was asked")
    apply_ablations(runtime, cfg)
    return runtime


def render_queries(cfg: EvalConfig, runtime):
    """Each query of the protocol, predicted and rendered: yields (batch, prediction, colour render,
    semantic render, ms) with ms = encoder + both renders, device-synchronised."""
    from gssplat_ros.data import WindowDataset

    device = runtime.info.device
    dataset = WindowDataset(cfg.data, cfg.format, split=cfg.split, views=cfg.views, targets=1,
                            size=(cfg.width, cfg.height), context_stride=cfg.context_stride, max_targets=cfg.max_targets)
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
            pred = Prediction.from_outputs(runtime(inputs))
            color = render(pred.color, target, settings)
            sem = render(pred.semantic, target, settings)
        _sync(device)
        yield b, pred, color, sem, (time.perf_counter() - t0) * 1e3


def evaluate(cfg: EvalConfig) -> dict:
    runtime = open_runtime(cfg)
    device = runtime.info.device
    protocol = Protocol(num_classes=runtime.info.num_classes)
    per_image, times_ms = [], []
    if cfg.images:
        Path(cfg.images).mkdir(parents=True, exist_ok=True)
    for i, (b, pred, color, sem, ms) in enumerate(render_queries(cfg, runtime)):
        if i >= cfg.warmup:
            times_ms.append(ms)
        rgb = color.rgb[0].clamp(0, 1).float().cpu().numpy()
        labels = sem.features[0].argmax(-1).cpu().numpy()
        gt_rgb = b["target_images"][0].permute(1, 2, 0).numpy()
        gt_depth = b["target_depth"][0].numpy()
        mask = gt_depth > 0 if cfg.rgb_mask == "valid-depth" else None
        m = image_metrics(rgb, gt_rgb, mask, protocol)
        m.update(semantic_metrics(labels, b["target_labels"][0].numpy(), protocol.num_classes, protocol.ignore_index))
        rendered_depth = color.depth[0].float().cpu().numpy()
        m["render_depth_absrel"] = abs_rel(np.where(color.alpha[0].cpu().numpy() > 0.5, rendered_depth, 0), gt_depth)
        if cfg.depth == "estimated":  # in sensor mode the context depth is the ground truth itself
            m["depth_absrel"] = abs_rel(pred.depth.float().cpu().numpy(), b["context_depth"][:, 0].numpy())
        m["scene"], m["target"] = b["scene"], int(b["target_indices"][0])
        per_image.append(m)
        if cfg.images:
            _save_sheet(Path(cfg.images) / f"{b['scene']}_{int(b['target_indices'][0]):04d}.png", b, rgb, labels,
                        rendered_depth, color.alpha[0].cpu().numpy())
    summary = average_metrics(per_image)
    summary = {k: v for k, v in summary.items() if not isinstance(v, (list, dict, str))}
    summary["ci95"] = {k: scene_bootstrap_interval(per_image, k) for k in INTERVAL_KEYS if k in summary}
    per_class = per_class_iou(per_image, runtime.info.class_names or tuple(map(str, range(protocol.num_classes))))
    summary["ms_per_query"] = float(np.median(times_ms)) if times_ms else float("nan")
    summary["num_images"] = len(per_image)
    protocol_text = (describe_protocol(protocol) + f"; contexts: the {cfg.views} "
                     + ("nearest frames" if cfg.context_stride == 1 else f"nearest of every {cfg.context_stride}th frame")
                     + f"; RGB mask: {cfg.rgb_mask}"
                     + "; semantic scales: " + ", ".join(f"{s:g}" for s in getattr(runtime, "scales", (1.0,)))
                     + ("; ablation: offsets off" if cfg.ablate_offsets else "")
                     + ("; ablation: aggregation off" if cfg.ablate_aggregation else "")
                     + ("; ablation: geometry cues off" if cfg.ablate_geometry else "")
                     + (f"; world origin moved: floor at z = {cfg.world_shift_z:g} m" if cfg.world_shift_z else ""))
    images = [{k: v for k, v in m.items() if not isinstance(v, (list, dict))} for m in per_image]
    return {"config": asdict(cfg), "protocol": protocol_text, "runtime": runtime.info.name, "device": str(device),
            "metrics": summary, "per_class": per_class, "images": images}


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

    from gssplat_ros.data import PALETTE

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
    m = result["metrics"]
    keys = [("PSNR", "psnr", ".2f"), ("SSIM", "ssim", ".3f"), ("mIoU", "miou", ".3f"), ("total acc", "total_accuracy", ".3f"),
            ("class acc", "class_average_accuracy", ".3f"), ("depth AbsRel", "depth_absrel", ".3f"),
            ("render depth AbsRel", "render_depth_absrel", ".3f"), ("ms/query", "ms_per_query", ".0f")]
    head = "| " + " | ".join(k for k, _, _ in keys) + " | images |"
    row = "| " + " | ".join(format(m[key], fmt) if key in m else "-" for _, key, fmt in keys) + f" | {m['num_images']} |"
    precision = result["config"].get("precision", "auto")
    lines = [f"protocol: {result['protocol']}", f"runtime: {result['runtime']} ({precision}) on {result['device']}",
             head, "|" + "---|" * (len(keys) + 1), row]
    intervals = m.get("ci95") or {}
    if intervals:
        cells = [(f"{format(intervals[key][0], fmt)}-{format(intervals[key][1], fmt)}"
                  if key in intervals and key in m else "") for _, key, fmt in keys]
        lines.append("| " + " | ".join(cells) + " | 95% (scenes resampled) |")
    if result.get("per_class"):
        lines += ["", "per-class IoU (mean over the images that contain the class):", "| class | IoU | images |",
                  "|---|---|---|"]
        lines += [f"| {r['class']} | {r['iou']:.3f} | {r['images']} |" for r in result["per_class"]]
    return "\n".join(lines)


def write_json(result: dict, path: Optional[str]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2))
