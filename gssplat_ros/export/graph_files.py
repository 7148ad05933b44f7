"""Names, example inputs and metadata of exported encoder graphs: what the exporter, the quantiser and the
parity check share (gssplat_ros/export/onnx_export.py writes the graphs).

Usage:
    name = onnx_file_name("tiny_sensor", 4, 160, 120, "fp32", "host")   # tiny_sensor_v4_160x120_fp32_host.onnx
    second = gaussians_graph_path(first_path)                            # the pair's second graph
    meta = read_metadata(path)                                           # decoded metadata_props
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor

from gssplat_ros.cameras import look_at, make_K, rigid_inverse


# ------------------------------------------------------------------------------------------------ names
def onnx_file_name(name: str, views: int, width: int, height: int, precision: str = "fp32",
                   scatter: str = "elements") -> str:
    """`<name>_v<V>_<W>x<H>_<precision>[_host].onnx`, e.g. tiny_sensor_v4_160x120_fp32.onnx."""
    suffix = "" if scatter == "elements" else f"_{scatter}"
    return f"{name}_v{views}_{width}x{height}_{precision}{suffix}.onnx"


def check_shape(views: int, width: int, height: int) -> None:
    """Raise ValueError naming the bad argument (V >= 2; W, H positive multiples of 4)."""
    if views < 2:
        raise ValueError(f"views must be >= 2, got {views}")
    for name, value in (("width", width), ("height", height)):
        if value <= 0 or value % 4:
            raise ValueError(f"{name} must be a positive multiple of 4, got {value}")


def example_inputs(views: int, width: int, height: int, depth_mode: str = "sensor", seed: int = 0) -> tuple[Tensor, ...]:
    """Plausible positional inputs for tracing and quick checks: a camera arc, smooth images and depth.

    Returns (images [V,3,H,W], K [V,3,3], world_from_cam [V,4,4], cam_from_world [V,4,4]) plus depth
    [V,1,H,W] metres in sensor mode.
    """
    g = torch.Generator().manual_seed(seed)
    poses = []
    for i in range(views):
        a = 2.0 * math.pi * i / views
        eye = (0.3 * math.cos(a), 0.15 * math.sin(a), 1.2 + 0.1 * math.sin(a))
        poses.append(look_at(eye, (0.0, 2.5, 1.0)))
    world_from_cam = torch.stack(poses)
    K = make_K(0.9 * width, 0.9 * width, width / 2.0, height / 2.0)[None].repeat(views, 1, 1)
    low = torch.rand(views, 3, max(1, height // 4), max(1, width // 4), generator=g)
    images = torch.nn.functional.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)
    coarse = torch.rand(views, 1, max(1, height // 8), max(1, width // 8), generator=g)
    depth = 1.5 + 2.0 * torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
    args = (images, K, world_from_cam, rigid_inverse(world_from_cam))
    return (*args, depth) if depth_mode == "sensor" else args


def gaussians_graph_path(path: Union[str, Path]) -> Path:
    """The second file of a scatter="host" export, next to the first: `<stem>_gaussians.onnx`."""
    path = Path(path)
    return path.with_name(f"{path.stem}_gaussians.onnx")


def depth_graph_path(path: Union[str, Path]) -> Path:
    """The depth graph of a scatter="host" export that refines on the host, next to the first: `<stem>_depth.onnx`."""
    path = Path(path)
    return path.with_name(f"{path.stem}_depth.onnx")


def set_metadata(model, meta: dict[str, str]) -> None:
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def read_metadata(path_or_model) -> dict[str, Any]:
    """metadata_props of an exported encoder, with the JSON and integer fields decoded."""
    import onnx  # lazy: onnx is an optional dependency (the export extra)

    model = path_or_model
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(path_or_model), load_external_data=False)
    meta: dict[str, Any] = {p.key: p.value for p in model.metadata_props}
    for key in ("class_names", "input_names", "output_names", "model_config"):
        if key in meta:
            meta[key] = json.loads(meta[key])
    for key in ("num_classes", "views", "width", "height", "opset"):
        if key in meta:
            meta[key] = int(meta[key])
    return meta
