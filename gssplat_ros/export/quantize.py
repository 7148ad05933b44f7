"""int8 post-training quantisation of the onnxruntime-CPU graph pair (export precision "int8", scatter "host").

Usage:
    export_onnx(net, "tiny_sensor_v4_160x120_int8_host.onnx", 4, 160, 120, "int8", scatter="host")
    gssplat export onnx --views 4 --width 160 --height 120 --scatter host --int8
    quantize_host_pair(fp32_first, int8_first, calibration_windows(4, 160, 120, "sensor"))

On a CPU with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI; ARM's dot product on Orin-class
boards) onnxruntime's QLinearConv runs the trunk's convolutions ~2.6x faster than its fp32 kernels
(V=4 160x120 sensor, 2 threads: 45 -> 17 ms in the first graph), which pays for the quantise /
dequantise steps around them. The quantisation itself is onnxruntime's static QDQ tool: int8 weights per
output channel, uint8 activations, the ranges calibrated on a few windows (99.999th percentile of each
activation's histogram; min/max let rare outliers stretch the range and lost labels on 2-7% of the
pixels, measured). Only convolutions are quantised; everything between them (group norms, attention,
the voxel geometry and pooling, Gaussian decoding) stays float32, and so do:

- the encoder's 3-channel stem (see FLOAT_MODULES);
- the two heads' last convolutions (the colour head's offsets, scales, rotations, opacities and SH; the
  semantic head's class logits): quantising the colour head's output alone cost ~8 dB of render PSNR and
  the logits' conv flipped the labels of most pixels (measured, shipped sensor model, V=4 160x120);
- an estimated-depth model's depth branch (plane-sweep matching and cost regularisation, the depth
  encoder): its depth decides where every Gaussian sits.

Calibration windows come from the procedural scene generator (fixed seed, scenes unrelated to any
evaluation split) or, with `data`, from a data set's train split: V-view windows of the graph's shape.
The quantised pair keeps the fp32 pair's contract (inputs, outputs, metadata), with `precision` "int8"
and the calibration recorded in the metadata.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Union

import numpy as np

from gssplat_ros.cameras import Cameras
from gssplat_ros.data import WindowDataset
from gssplat_ros.export.graph_files import depth_graph_path, gaussians_graph_path, read_metadata, set_metadata
from gssplat_ros.export.parity import parity_inputs
from gssplat_ros.prediction import REFINED_DEPTH_INPUT, EncoderInputs
from gssplat_ros.runtime.host_pooling import HAVE_NUMBA, HostPooling
from gssplat_ros.runtime.onnx_runtime import depth_stage_for, second_graph_feeds, session_options

log = logging.getLogger(__name__)

CALIBRATION_SEED = 424242  # generator seed of the calibration scenes (val/test sets use 5002xx / 9xxxxx)
CALIBRATION_WINDOWS = 8
CALIBRATION_PERCENTILE = 99.999
# Convolutions kept in float32, as module paths (matched against node names "/a/b/Conv" and weight
# names "net.a.b.weight"); see the module docstring for why.
# The 3-channel stem too: quantised, it cost most of the label agreement with torch on the CI's small room
# in some onnxruntime/onnx versions (the cause was not found), and a 3-channel convolution is slower as
# QLinearConv than in float anyway, so keeping it float costs nothing.
FLOAT_MODULES = ("color_head.conv2", "semantic_head.conv2", "stem")
FLOAT_DEPTH_MODULES = ("depth_net", "depth_encoder")  # estimated-depth models only


def calibration_windows(views: int, width: int, height: int, depth_mode: str, count: int = CALIBRATION_WINDOWS,
                        seed: int = CALIBRATION_SEED, data: Union[str, Path, None] = None,
                        data_format: str = "scannet") -> list[dict[str, np.ndarray]]:
    """`count` encoder input windows (graph input name -> float32 array) of V views at W x H.

    From generated scenes (one window per scene, room types cycling) or, with `data`, spread over the
    windows of that root's train split.
    """
    windows = []
    if data is None:
        if not HAVE_NUMBA:  # parity_inputs would fall back to synthetic windows
            raise RuntimeError("int8 calibration needs the scene generator (pip install numba) or a data root")
        for index in range(count):
            windows.append(parity_inputs(views, width, height, depth_mode, seed, index).inputs)
    else:
        ds = WindowDataset(data, data_format, split="train", views=views, targets=1, size=(width, height),
                           sampling="fixed", max_targets=2)  # fmt: skip
        if len(ds) == 0:
            raise ValueError(f"{data}: no train windows for int8 calibration")
        for i in np.linspace(0, len(ds) - 1, min(count, len(ds))).round().astype(int):
            b = ds[int(i)]
            cams = Cameras(b["context_K"], b["context_world_from_cam"], width, height)
            depth = b["context_depth"] if depth_mode == "sensor" else None
            windows.append(EncoderInputs.from_cameras(b["context_images"], cams, depth))
    arrays = []
    for w in windows:
        feeds = {k: np.ascontiguousarray(v.detach().float().numpy()) for k, v in w.as_dict().items() if v is not None}
        if depth_mode != "sensor":
            feeds.pop("depth", None)
        arrays.append(feeds)
    return arrays


def float_conv_nodes(model, depth_mode: str) -> list[str]:
    """Names of the Conv nodes of `model` (onnx.ModelProto) that stay float32."""
    modules = FLOAT_MODULES + (FLOAT_DEPTH_MODULES if depth_mode != "sensor" else ())
    node_patterns = [re.compile("(^|/)" + re.escape(m.replace(".", "/")) + "(/|$)") for m in modules]
    weight_prefixes = tuple(f"net.{m}." for m in modules)
    keep = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        weight = node.input[1] if len(node.input) > 1 else ""
        if any(p.search(node.name) for p in node_patterns) or weight.startswith(weight_prefixes):
            keep.append(node.name)
    return keep


def restore_float_inputs(model) -> int:
    """Give float consumers back the float tensor that onnxruntime's QDQ tool rounded for a convolution.

    The tool rounds a tensor that a quantised convolution reads by one QuantizeLinear -> DequantizeLinear
    pair and points *every* consumer at the rounded copy, so float nodes that share the tensor read 8-bit
    values too: the residual skips, and in an estimated-depth model the float depth branch and the
    photometric refinement reading the rounded images (refined depths moved by up to 1 m, measured). Here
    every consumer other than a quantised convolution reads the original again. Tensors that a convolution writes
    stay rounded for everyone: onnxruntime fuses Conv -> QuantizeLinear into one QLinearConv only while the
    quantiser is the convolution's sole consumer. Returns the number of inputs restored.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    quantised_convs = {n.name for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 1
                       and getattr(producers.get(n.input[1]), "op_type", "") == "DequantizeLinear"}  # fmt: skip
    restored = 0
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear"]:
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue  # a weight's DequantizeLinear (its input is an int8 initializer)
        original = q.input[0]
        source = producers.get(original)
        if source is not None and source.op_type == "Conv":
            continue
        for node in model.graph.node:
            if node.op_type in ("QuantizeLinear", "DequantizeLinear") or node.name in quantised_convs:
                continue
            for i, name in enumerate(node.input):
                if name == dq.output[0]:
                    node.input[i] = original
                    restored += 1
    return restored


def quantize_host_pair(first: Union[str, Path], out_first: Union[str, Path], windows: list[dict[str, np.ndarray]],
                       calibration: str = "generated scenes") -> Path:
    """Quantise a scatter="host" fp32 pair (`first` and its second graph) into `out_first` and its second.

    windows: calibration inputs of the first graph (calibration_windows). The second graph is calibrated
    on what the first graph and the host pooling make of them. Returns out_first.
    """
    import onnx  # lazy: onnx and onnxruntime are optional dependencies (the export extra)
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not windows:
        raise ValueError("int8 calibration needs at least one window")
    t0 = time.perf_counter()
    first, out_first = Path(first), Path(out_first)
    meta = read_metadata(first)
    if meta.get("scatter") != "host" or meta.get("precision") != "fp32":
        raise ValueError(f"{first}: int8 quantises an fp32 scatter='host' pair (got precision "
                         f"{meta.get('precision')!r}, scatter {meta.get('scatter')!r})")  # fmt: skip
    second, out_second = gaussians_graph_path(first), gaussians_graph_path(out_first)
    depth_mode = meta["depth_mode"]

    s1 = ort.InferenceSession(str(first), session_options(), providers=["CPUExecutionProvider"])
    depth_stage = depth_stage_for(first, s1, session_options(), ["CPUExecutionProvider"])
    if depth_stage is not None:  # the first graph takes the host-refined depth (its depth graph stays float)
        windows = [{**w, REFINED_DEPTH_INPUT: depth_stage(w)} for w in windows]
    names1 = [i.name for i in s1.get_inputs()]
    feeds1 = [{n: w[n] for n in names1} for w in windows]
    s2 = ort.InferenceSession(str(second), session_options(), providers=["CPUExecutionProvider"])
    pooling = HostPooling(int(meta["table_size"]))
    feeds2 = [second_graph_feeds(s1, s2, pooling, feed) for feed in feeds1]
    del s1, s2, depth_stage

    class Reader(CalibrationDataReader):
        def __init__(self, feeds):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    out_first.parent.mkdir(parents=True, exist_ok=True)
    staged = []
    with tempfile.TemporaryDirectory(dir=out_first.parent, prefix=".quantize-") as tmp:
        for src, dst, feeds in ((second, out_second, feeds2), (first, out_first, feeds1)):  # second first (see export)
            pre = Path(tmp) / f"{src.stem}_pre.onnx"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            keep = float_conv_nodes(onnx.load(str(pre)), depth_mode)
            raw = Path(tmp) / f"{src.stem}_int8.onnx"
            chatter = io.StringIO()  # the tool prints its calibration progress; keep it out of node logs
            with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_static(
                    str(pre), str(raw), Reader(feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=keep,
                    extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
                )  # fmt: skip
            log.debug("%s", chatter.getvalue())
            model = onnx.load(str(raw))
            restore_float_inputs(model)
            graph_meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
            graph_meta.update({
                "precision": "int8",
                "int8_calibration": f"{len(feeds)} windows of {calibration}, percentile {CALIBRATION_PERCENTILE}",
                "int8_float_convs": ",".join(keep),
            })  # fmt: skip
            if "gaussians_graph" in graph_meta:
                graph_meta["gaussians_graph"] = out_second.name
            if "depth_graph" in graph_meta:
                graph_meta["depth_graph"] = depth_graph_path(out_first).name
            set_metadata(model, graph_meta)
            onnx.checker.check_model(model)
            final = Path(tmp) / dst.name
            onnx.save(model, str(final))
            staged.append((final, dst))
        if "depth_graph" in meta:  # the depth graph stays float32 (FLOAT_DEPTH_MODULES): copied with the pair
            depth_model = onnx.load(str(first.with_name(meta["depth_graph"])))
            set_metadata(depth_model, {p.key: p.value for p in depth_model.metadata_props} | {"precision": "int8"})
            staged_depth = Path(tmp) / depth_graph_path(out_first).name
            onnx.save(depth_model, str(staged_depth))
            staged.insert(0, (staged_depth, depth_graph_path(out_first)))
        for final, dst in staged:  # the second (and depth) graph land first: a present first file means a complete set
            final.replace(dst)
    log.info("quantised %s to int8 (%d calibration windows) in %.1f s", first.name, len(windows),
             time.perf_counter() - t0)  # fmt: skip
    return out_first


def quantize_export(net, path: Union[str, Path], views: int, width: int, height: int,
                    export_fp32_pair: Callable[[Path], Path], calibration_data: Union[str, Path, None] = None,
                    calibration_windows_count: int = CALIBRATION_WINDOWS) -> int:
    """Export `net`'s fp32 host pair to a temporary folder (export_fp32_pair(first path) -> first path, the
    exporter passed in by onnx_export so that this module does not import it back) and quantise it into
    `path`; returns the node count."""
    import onnx  # lazy: onnx is an optional dependency (the export extra)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-fp32-") as tmp:
        fp32 = export_fp32_pair(Path(tmp) / "encoder_fp32_host.onnx")
        windows = calibration_windows(views, width, height, net.cfg.depth_mode, calibration_windows_count,
                                      data=calibration_data)  # fmt: skip
        source = f"train windows of {calibration_data}" if calibration_data else f"generated scenes (seed {CALIBRATION_SEED})"
        quantize_host_pair(fp32, path, windows, source)
    files = [path, gaussians_graph_path(path), depth_graph_path(path)]  # the depth graph only for a refining model
    return sum(len(onnx.load(str(p)).graph.node) for p in files if p.exists())
