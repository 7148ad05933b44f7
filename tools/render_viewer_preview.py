"""Compose a picture of the viewer panels (rviz2 / Foxglove layout) from the node's outputs, without a viewer.

Usage:
    python tools/render_viewer_preview.py [--out docs/img/viewer_preview.png] [--size 192x144] [--frames 16]

rviz2 and Foxglove need a display and a ROS install; this draws the same panels from the same data: a
generated demo scene goes through the core Pipeline (shipped weights), as gssplat_node does, and the
panels are rendered RGB | semantic colour with the class legend | depth (turbo) | a top-down view of the
class-coloured cloud (`~/gaussians/semantic`'s colours). It is a rendering of the panels, not a screenshot.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _turbo(depth: np.ndarray, max_m: float = 6.0) -> np.ndarray:
    import cv2

    d = np.nan_to_num(depth, nan=0.0)
    scaled = (np.clip(d / max_m, 0, 1) * 255).astype(np.uint8)
    rgb = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)[..., ::-1]
    rgb[d <= 0] = 0
    return rgb


def _top_down(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W, 3] image of the cloud seen from above (x right, y up), higher points drawn last."""
    from gssplat_ros.cloud_layout import unpack_rgb

    w, h = size
    img = np.full((h, w, 3), 48, np.uint8)
    if len(arr) == 0:
        return img
    xy = np.stack([arr["x"], arr["y"]], -1)
    lo, hi = np.percentile(xy, 1, axis=0), np.percentile(xy, 99, axis=0)
    scale = 0.9 * min(w / max(hi[0] - lo[0], 1e-3), h / max(hi[1] - lo[1], 1e-3))
    centre = (lo + hi) / 2
    px = ((xy[:, 0] - centre[0]) * scale + w / 2).astype(int)
    py = (h / 2 - (xy[:, 1] - centre[1]) * scale).astype(int)
    colors = unpack_rgb(arr["rgb"])
    order = np.argsort(arr["z"])
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    for i in order[inside[order]]:
        img[max(py[i] - 1, 0):py[i] + 1, max(px[i] - 1, 0):px[i] + 1] = colors[i]
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "img" / "viewer_preview.png"))
    ap.add_argument("--size", default="192x144")
    ap.add_argument("--frames", type=int, default=16)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))

    import torch

    from gssplat_ros.data import load_scene
    from gssplat_ros.data.procedural import GenerateConfig, generate_dataset
    from gssplat_ros.node_config import NodeConfig
    from gssplat_ros.pipeline import Pipeline
    from gssplat_ros.ros.labels import class_colors, semantic_cloud_array
    from gssplat_ros.window import Frame

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(GenerateConfig(out=tmp, scenes=1, frames=args.frames, width=w, height=h, seed=7))
        scene_dir = sorted(p for p in Path(tmp).iterdir() if p.is_dir() and p.name.startswith("scene"))[0]
        scene = load_scene(scene_dir, "scannet", size=(w, h))
        node_cfg = NodeConfig()  # the node's defaults: its palette and pipeline settings
        pc = node_cfg.pipeline
        pc.model_width, pc.model_height, pc.device = w, h, "cpu"
        pipe = Pipeline(pc.validate())
        for i in range(len(scene)):
            f = scene.frame(i)
            rgb = (f.image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            pipe.add_frame(Frame(stamp_ns=(i + 1) * 10**8, image=rgb, K=f.K.numpy().astype(np.float64),
                                 world_from_cam=f.world_from_cam.numpy().astype(np.float64),
                                 depth=f.depth.numpy().astype(np.float32)))
        prediction = pipe.predict(pipe.snapshot())
        last = scene.frame(len(scene) - 1)
        out = pipe.render(prediction, last.K.numpy().astype(np.float64),
                          last.world_from_cam.numpy().astype(np.float64), w, h, True)
        names = tuple(pipe.class_names) or tuple(f"class_{i}" for i in range(pipe.num_classes))
        colors = class_colors(len(names), np.asarray(node_cfg.palette, np.uint8).reshape(-1, 3))
        cloud = semantic_cloud_array(pipe.cloud(prediction), colors)

    lut = np.zeros((256, 3), np.uint8)
    lut[:len(colors)] = colors
    semantic = lut[out.labels]
    panels = [out.rgb, semantic, _turbo(out.depth), _top_down(cloud, (w, h))]
    titles = ["~/render/image", "~/render/semantic_color + legend", "~/render/depth", "~/gaussians/semantic (top)"]
    legend_w, title_h = 120, 16
    sheet = Image.new("RGB", (4 * w + legend_w, h + title_h), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for k, (panel, title) in enumerate(zip(panels, titles)):
        x = k * w + (legend_w if k >= 2 else 0)
        sheet.paste(Image.fromarray(np.ascontiguousarray(panel)), (x, title_h))
        draw.text((x + 2, 2), title, fill=(230, 230, 230))
    present = set(np.unique(out.labels).tolist()) | set(np.unique(cloud["label"]).tolist())
    y = title_h + 2
    for i, name in enumerate(names):  # the legend, as ~/labels/legend draws it: names in their colours
        if i in present and y < h + title_h - 10:
            draw.rectangle((2 * w + 4, y + 2, 2 * w + 12, y + 10), fill=tuple(int(c) for c in colors[i]))
            draw.text((2 * w + 16, y), name, fill=tuple(int(c) for c in colors[i]))
            y += 12
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
