"""ONNX export of the GSsplat encoder for one fixed window shape (V views of W x H), opset 18.

Usage:
    result = export_checkpoint("runs/a/tiny_sensor", views=4, width=160, height=120, precision="fp32")
    result.path        # runs/a/tiny_sensor_v4_160x120_fp32.onnx (one file per shape and precision)
    read_metadata(result.path)["class_names"]

    python -m gssplat_ros.export onnx --checkpoint runs/a/tiny_sensor --views 4 --width 160 --height 120 --fp16 --slim

The graph takes the contract inputs (`gssplat_ros.prediction.INPUT_NAMES`; `depth` only in sensor mode)
and returns the per-pixel Gaussian tensors of both sets in OUTPUT_NAMES order (the `depth` output is
named `depth_out` in the graph, ONNX value names being unique). The rasteriser stays outside.

fp16 is mixed precision: the convolutional trunk (encoder, attention, decoders, heads) runs in half
precision, while the geometry (unprojection, voxel hashing and pooling, Gaussian decoding, SH rotation)
and the plane-sweep warping stay in float32. Voxel hashing needs exact integers beyond fp16's 2048 and
the pooled voxel tags reach 10^5, far past fp16's range, so a plain whole-graph fp16 conversion would
silently break cross-view aggregation. Inputs and outputs are float32 in both precisions.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from gssplat_ros.export.graph_files import (
    check_shape,
    depth_graph_path,
    example_inputs,
    gaussians_graph_path,
    onnx_file_name,
    read_metadata,
    set_metadata,
)
from gssplat_ros.export.graphs import DepthGraph, ExportWrapper, GaussiansGraph, PoolingInputsGraph
from gssplat_ros.export.quantize import quantize_export
from gssplat_ros.model.checkpoint import load_model
from gssplat_ros.model.depth import CostRegularizer
from gssplat_ros.model.depth_refine import refine_depth
from gssplat_ros.model.network import pool_on_host
from gssplat_ros.prediction import (
    DEPTH_GRAPH_OUTPUTS,
    GAUSSIANS_GRAPH_INPUTS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    POOLING_INPUT_OUTPUTS,
    REFINED_DEPTH_INPUT,
)
from gssplat_ros.runtime.engine_cache import file_sha256
from gssplat_ros.weights import WEIGHTS_DIR, checkpoint_stem, default_checkpoint

# what other modules import from here besides export_onnx (the file helpers live in graph_files.py)
__all__ = ["ExportResult", "check_shape", "depth_graph_path", "example_inputs", "export_checkpoint", "export_onnx",
           "gaussians_graph_path", "onnx_file_name", "read_metadata", "set_metadata"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # opset-20 GridSample gave wrong results on TensorRT 10.13; 18 is correct everywhere
PRECISIONS = ("fp32", "fp16", "int8")  # int8: onnxruntime on the CPU only (scatter="host"; gssplat_ros/export/quantize.py)
# How the voxel pooling scatters: "elements" (one graph with ScatterElements, runs everywhere incl. TensorRT)
# or "host" (for onnxruntime on the CPU: two graphs, the pooling between them on the host in torch).
# onnxruntime's CPU kernels have no scatter-add that is fast and correct on several threads:
# ScatterElements walks element by element (~60 ms of a 257 ms window at V=4 160x120, 2 threads) and a
# reducing ScatterND splits its rows across threads without atomics, losing updates (an earlier "rows"
# flavour did that; graphs whose metadata still says so run on one thread, see onnx_runtime.open_session).
SCATTERS = ("elements", "host")
METADATA_FORMAT = "gssplat_ros.encoder/1"
# Sub-modules of GSsplatNet that run in half precision in an fp16 export (and may in a TensorRT fp16
# engine). Everything else - geometry, voxel hashing and pooling, depth sweep - stays float32.
FP16_MODULES = ("color_decoder", "semantic_decoder", "color_head", "semantic_head", "semantic_geometry")
# the encoder's parts one by one: the network calls its backbone and its attention blocks separately
FP16_SUBMODULES = ("encoder.stem", "encoder.stage1", "encoder.stage2", "encoder.semantic",
                   "color_aggregate.reduce", "semantic_aggregate.reduce",
                   "depth_encoder.stem", "depth_encoder.stage1", "depth_encoder.stage2")  # the last: composed models


@dataclass
class ExportResult:
    path: Path
    seconds: float  # wall time of trace + checks + save
    num_nodes: int
    metadata: dict[str, str] = field(default_factory=dict)


def git_revision(path: Union[str, Path, None] = None) -> str:
    """The git commit hash of the source tree (or 'unknown' outside a checkout)."""
    root = Path(path) if path else Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ------------------------------------------------------------------------------------------------ fp16
def _cast_floats(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(
            value, **{f.name: _cast_floats(getattr(value, f.name), dtype) for f in dataclasses.fields(value)}
        )
    return value


class HalfPrecision(nn.Module):
    """Runs `inner` in float16: float inputs are cast to half and float outputs back to float32."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner.half()

    def forward(self, *args: Any) -> Any:
        return _cast_floats(self.inner(*_cast_floats(args, torch.float16)), torch.float32)


def to_mixed_fp16(net: nn.Module) -> nn.Module:
    """A copy of GSsplatNet whose convolutional trunk runs in fp16 (see the module docstring)."""
    net = copy.deepcopy(net).float().eval()
    for name in (*FP16_MODULES, *FP16_SUBMODULES):
        parent_name, _, child = name.rpartition(".")
        if parent_name and not isinstance(getattr(net, parent_name.split(".")[0], None), nn.Module):
            continue  # an optional part this model does not have (depth_encoder = None)
        parent = net.get_submodule(parent_name) if parent_name else net
        if getattr(parent, child, None) is not None:
            setattr(parent, child, HalfPrecision(getattr(parent, child)))
    return net


# ------------------------------------------------------------------------------------------------ export
def export_onnx(
    net: nn.Module,
    path: Union[str, Path],
    views: int,
    width: int,
    height: int,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    slim: bool = False,
    metadata: Optional[dict[str, Any]] = None,
    scatter: str = "elements",
) -> ExportResult:
    """Trace GSsplatNet for one (V, H, W) and write a checked, self-describing ONNX file.

    Args:
        net: a GSsplatNet (its `cfg` gives depth mode, classes, ...); it is not modified.
        path: output file; written atomically (a temporary file renamed into place).
        views, width, height: the fixed window shape of the graph.
        precision: "fp32", "fp16" (mixed: see the module docstring) or "int8" (scatter="host" only: the fp32
            pair quantised, calibrated on generated scenes; gssplat_ros/export/quantize.py).
        opset: ONNX opset (18 by default; TensorRT 10.3 reads 9..20).
        slim: simplify the graph with onnxslim (constant folding, dead-node removal).
        metadata: extra metadata_props entries (values JSON-encoded unless already strings).
        scatter: "elements" (one portable graph, TensorRT) or "host" (two graphs with the voxel pooling
            between them, for onnxruntime on the CPU: `path` holds the first, gaussians_graph_path(path)
            the second; see SCATTERS). A model whose depth refinement runs on the host
            (GSsplatNet.refines_on_host) gets a third graph before them, depth_graph_path(path), and the
            first graph takes the refined depth as its last input (runtime/host_refine.py).

    Raises:
        ValueError: bad shape or precision.
        onnx.checker.ValidationError: the written graph is not valid ONNX.
    """
    check_shape(views, width, height)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if scatter not in SCATTERS:
        raise ValueError(f"scatter must be one of {SCATTERS}, got {scatter!r}")
    if precision == "int8":
        if scatter != "host":
            raise ValueError("int8 is for onnxruntime on the CPU: export it with scatter='host' (--scatter host)")
        t0 = time.perf_counter()

        def export_fp32_pair(fp32_path: Path) -> Path:
            return export_onnx(net, fp32_path, views, width, height, "fp32", opset, slim, metadata=metadata,
                               scatter="host").path  # fmt: skip

        nodes = quantize_export(net, path, views, width, height, export_fp32_pair)
        return ExportResult(Path(path), time.perf_counter() - t0, nodes, read_metadata(path))
    cfg = net.cfg
    t0 = time.perf_counter()
    model_net = to_mixed_fp16(net) if precision == "fp16" else copy.deepcopy(net).float().eval()
    wrapper = ExportWrapper(model_net).eval()
    args = example_inputs(views, width, height, cfg.depth_mode)
    input_names = list(wrapper.graph_input_names())
    output_names = list(wrapper.graph_output_names())
    meta = graph_metadata(cfg, views, width, height, precision, opset, slim)
    meta["scatter"] = scatter
    meta.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()})
    doc = f"GSsplat encoder ({cfg.name}, {cfg.depth_mode} depth), V={views}, {width}x{height}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if scatter == "elements":
        nodes = _write_graph(wrapper, args, input_names, output_names, path, opset, slim, meta, doc)
    else:  # two or three graphs; the first is written last, so a present first file means a complete set
        fold_cost_convs(model_net)
        refine_on_host = model_net.refines_on_host(width, height)
        first = PoolingInputsGraph(model_net, refined_depth_input=refine_on_host).eval()
        second = GaussiansGraph(model_net).eval()
        table_size = first.table_size(views, height, width)
        first_args, first_inputs, nodes = args, input_names, 0
        if refine_on_host:
            depth_graph, depth_path = DepthGraph(model_net).eval(), depth_graph_path(path)
            refine = {"planes": cfg.depth_refine_planes, "rel_range": cfg.depth_refine_range,
                      "radius": cfg.depth_refine_radius}  # fmt: skip
            with torch.no_grad():
                cascade_depth, small, K_small, nbrs = depth_graph(*args[:4])
                refined = refine_depth(cascade_depth, small, K_small, args[2], args[3], nbrs, **refine)
            first_args, first_inputs = (*args[:4], refined), input_names[:4] + [REFINED_DEPTH_INPUT]
            meta.update({"depth_graph": depth_path.name, "host_refine": json.dumps(refine)})
            nodes += _write_graph(depth_graph, args[:4], input_names[:4], list(DEPTH_GRAPH_OUTPUTS), depth_path,
                                  opset, slim, {**meta, "split_stage": "depth"},
                                  doc + ": the cascade, before the host refines its depth")  # fmt: skip
        with torch.no_grad():
            depth_full, color_feat, sem_feat, slot, columns = first(*first_args)
            pooled = pool_on_host(color_feat, sem_feat, slot, columns, table_size)
        second_args = (args[0], args[1], args[2], depth_full, color_feat, pooled[0], sem_feat, pooled[1])
        second_path = gaussians_graph_path(path)
        meta.update({"table_size": str(table_size), "gaussians_graph": second_path.name})
        # an observed colour set reads no colour features: the exporter drops those inputs (the runtime feeds
        # each graph only the inputs it declares)
        unused = ("color_feat", "color_pooled") if net.cfg.colour_gaussians == "observed" else ()
        nodes += _write_graph(second, second_args, list(GAUSSIANS_GRAPH_INPUTS), output_names, second_path, opset,
                              slim, {**meta, "split_stage": "gaussians"}, doc + ": heads after the voxel pooling",
                              unused_inputs=unused)
        meta["split_stage"] = "pooling_inputs"
        nodes += _write_graph(first, first_args, first_inputs, list(POOLING_INPUT_OUTPUTS), path, opset, slim, meta,
                              doc + ": up to the voxel pooling (the host pools, then runs " + second_path.name + ")")
    seconds = time.perf_counter() - t0
    log.info("exported %s (%d nodes) in %.1f s", path, nodes, seconds)
    return ExportResult(path, seconds, nodes, meta)


# The onnxruntime CPU flavour folds the cost volume's 3x3x3 convolutions into 2D ones up to this many
# depth planes (CostRegularizer.fold_planes_up_to; faster on its CPU kernels, not on TensorRT's or CUDA's).
FOLD_PLANES_UP_TO = 8


def fold_cost_convs(net: nn.Module) -> None:

    for module in net.modules():
        if isinstance(module, CostRegularizer):
            module.fold_planes_up_to = FOLD_PLANES_UP_TO


def _write_graph(module: nn.Module, args: tuple, input_names: list[str], output_names: list[str], path: Path,
                 opset: int, slim: bool, meta: dict[str, str], doc: str, unused_inputs: tuple[str, ...] = ()) -> int:
    """Trace `module` on `args`, check it and write it atomically to `path`; returns the node count.
    `unused_inputs` may be missing from the written graph (the exporter drops inputs nothing reads)."""
    import onnx  # lazy: onnx is an optional dependency (the export extra)

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings on shape checks and the legacy-exporter notice
            # The TorchScript exporter: fixed shapes need no torch.export machinery (nor onnxscript).
            torch.onnx.export(
                module, args, str(raw), opset_version=opset, dynamo=False, do_constant_folding=True,
                input_names=input_names, output_names=output_names,
            )  # fmt: skip
        model = onnx.load(str(raw))
        if slim:
            model = slim_model(model)
        fill_uniform_constants(model)
        present = {i.name for i in model.graph.input}
        _check_io(model, [n for n in input_names if n in present or n not in unused_inputs], output_names)
        set_metadata(model, meta)
        model.doc_string = doc
        onnx.checker.check_model(model, full_check=True)
        staged = Path(tmp) / path.name
        onnx.save(model, str(staged))
        os.replace(staged, path)  # atomic: concurrent exporters never see half a file
    return len(model.graph.node)


def fill_uniform_constants(model, min_bytes: int = 1 << 16) -> int:
    """Replace every large Constant node whose elements are all equal by a ConstantOfShape; returns the count.

    The tracer folds the voxel pooling's zero tables into constants (2 x 38 MB of zeros at V=4, 320x240),
    which bloats the file and every runtime's copy of it; a ConstantOfShape builds the same tensor at run
    time from its shape. onnxslim's folding keeps them, so this runs after it.
    """
    import onnx  # lazy: onnx is an optional dependency (the export extra)
    from onnx import helper, numpy_helper

    replaced = 0
    for i, node in enumerate(list(model.graph.node)):
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.attribute[0].name != "value":
            continue
        tensor = node.attribute[0].t
        if not tensor.dims or math.prod(tensor.dims) * 4 < min_bytes:
            continue
        values = numpy_helper.to_array(tensor)
        first = values.reshape(-1)[:1]
        if not (values == first).all():
            continue
        shape = helper.make_node("Constant", [], [node.output[0] + "_shape"],
                                 value=numpy_helper.from_array(np.asarray(values.shape, np.int64)))
        fill = helper.make_node("ConstantOfShape", [shape.output[0]], [node.output[0]], name=node.name or None,
                                value=numpy_helper.from_array(first.astype(values.dtype)))
        model.graph.node.remove(node)
        model.graph.node.insert(i, fill)
        model.graph.node.insert(i, shape)
        replaced += 1
    if replaced:
        onnx.checker.check_model(model)
    return replaced


def slim_model(model):
    """onnxslim simplification; graph input and output names are kept."""
    import onnxslim  # lazy: optional, only for --slim

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slimmed = onnxslim.slim(model)
    if slimmed is None:
        raise RuntimeError("onnxslim returned no model")
    return slimmed


def _check_io(model, input_names: list[str], output_names: list[str]) -> None:
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != input_names or got_out != output_names:
        raise RuntimeError(f"exported graph I/O {got_in} -> {got_out} differs from the contract {input_names} -> {output_names}")
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if any(not d.HasField("dim_value") for d in dims):
            raise RuntimeError(f"graph value {value.name} has a dynamic dimension; exports are shape-specialised")


def graph_metadata(cfg, views: int, width: int, height: int, precision: str, opset: int, slim: bool) -> dict:
    """The metadata_props every exported encoder carries (all values strings)."""
    return {
        "format": METADATA_FORMAT,
        "model_name": cfg.name,
        "depth_mode": cfg.depth_mode,
        "num_classes": str(cfg.num_classes),
        "class_names": json.dumps(list(cfg.class_names)),
        "views": str(views),
        "width": str(width),
        "height": str(height),
        "size": f"{width}x{height}",
        "precision": precision,
        "opset": str(opset),
        "slim": "1" if slim else "0",
        "source_revision": git_revision(),
        "torch_version": torch.__version__,
        "input_names": json.dumps(list(INPUT_NAMES if cfg.depth_mode == "sensor" else INPUT_NAMES[:4])),
        "output_names": json.dumps(list(OUTPUT_NAMES)),  # contract names, in graph output order
        "model_config": json.dumps(cfg.to_dict()),
    }


# ------------------------------------------------------------------------------------------------ checkpoints
def checkpoint_name(stem: Union[str, Path]) -> str:
    return Path(stem).name


def export_checkpoint(
    checkpoint: Union[str, Path] = "",
    out: Union[str, Path, None] = None,
    views: int = 4,
    width: int = 160,
    height: int = 120,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    slim: bool = False,
    depth_mode: str = "sensor",
    scatter: str = "elements",
) -> ExportResult:
    """Export a checkpoint ("" = the shipped weights for `depth_mode`).

    `out` is a file, a directory, or None (next to the checkpoint, or the current directory for the
    shipped weights); a directory gets the standard file name (`onnx_file_name`). The checkpoint's sha256 goes into the metadata.
    """
    stem = checkpoint_stem(checkpoint) if checkpoint else default_checkpoint(depth_mode)
    net, _ = load_model(stem)
    name = onnx_file_name(checkpoint_name(stem), views, width, height, precision, scatter)
    if out is None:  # next to the checkpoint; the current directory for the (packaged) shipped weights
        path = (Path.cwd() if stem.parent.resolve() == WEIGHTS_DIR else stem.parent) / name
    else:
        out = Path(out)
        path = out / name if out.is_dir() or not out.suffix else out
    weights = stem.with_suffix(".safetensors")
    extra = {"checkpoint": checkpoint_name(stem), "checkpoint_sha256": file_sha256(weights)}
    return export_onnx(net, path, views, width, height, precision, opset, slim, metadata=extra, scatter=scatter)
