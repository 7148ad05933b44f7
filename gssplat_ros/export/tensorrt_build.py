"""TensorRT engine build from an exported encoder ONNX (TensorRT 10 Python API).

Usage:
    result = build_engine("tiny_sensor_v4_160x120_fp32.onnx", "tiny_sensor_v4_160x120_fp16.engine",
                          BuildConfig(precision="fp16", workspace_mb=2048, timing_cache="trt.cache"))

    python -m gssplat_ros.export tensorrt --onnx tiny_sensor_v4_160x120_fp32.onnx --fp16 --timing-cache trt.cache

Build from the fp32 ONNX: with `precision="fp16"` the FP16 builder flag lets TensorRT run the
convolutional trunk in half precision while the geometry layers (unprojection, voxel hashing and
pooling, Gaussian decoding) are pinned to float32 by precision constraints, the same split as the fp16
ONNX export (see gssplat_ros/export/onnx_export.py). Without TensorRT installed every entry point raises one
TensorRTUnavailable error that says so.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from gssplat_ros.export.graph_files import read_metadata
from gssplat_ros.export.trt_ops import assert_tensorrt_compatible
from gssplat_ros.runtime.tensorrt_runtime import TensorRTUnavailable, require_tensorrt

__all__ = ["BuildConfig", "BuildResult", "EngineBuildError", "TensorRTUnavailable", "build_engine", "require_tensorrt",
           "tensorrt_version"]

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16")
# ONNX node-name scopes whose layers may run in fp16 (TensorRT names layers after their ONNX nodes).
FP16_SCOPES = (
    "/net/encoder/",
    "/net/color_decoder/",
    "/net/semantic_decoder/",
    "/net/color_head/",
    "/net/semantic_head/",
    "/net/color_aggregate/reduce/",
    "/net/semantic_aggregate/reduce/",
)


class EngineBuildError(RuntimeError):
    """The ONNX parser or the builder rejected the graph; the message carries TensorRT's reasons."""


def tensorrt_version() -> str:
    return str(require_tensorrt().__version__)


@dataclass
class BuildConfig:
    precision: str = "fp32"  # fp32 | fp16 (FP16 flag; geometry layers pinned to fp32)
    workspace_mb: int = 2048  # WORKSPACE memory pool limit
    timing_cache: Optional[Union[str, Path]] = None  # file read before and written after the build
    pin_fp32_geometry: bool = True  # fp16 only: keep layers outside FP16_SCOPES in float32
    check_ops: bool = True  # check the graph against TensorRT 10.3's operator table first
    optimization_level: Optional[int] = None  # builder optimisation level 0..5 (None = TensorRT's default, 3)


@dataclass
class BuildResult:
    path: Path
    seconds: float
    tensorrt_version: str
    precision: str
    pinned_fp32_layers: int = 0
    warnings: list[str] = field(default_factory=list)


def _fp16_layer(name: str) -> bool:
    return any(scope in name for scope in FP16_SCOPES)


def _pin_geometry_fp32(trt, network) -> int:
    """Float32 precision (and float32 outputs) for every float layer outside FP16_SCOPES."""
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if _fp16_layer(layer.name) or layer.type in (trt.LayerType.SHAPE, trt.LayerType.CONSTANT):
            continue
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        if not outputs or any(t.dtype not in (trt.float32, trt.float16) for t in outputs):
            continue  # integer / bool layers have no float precision to pin
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def _parser_errors(parser) -> str:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = ""
        node_name = getattr(err, "node_name", None)
        node_op = getattr(err, "node_operator", None)
        if callable(node_name) and node_name():
            node = f"node '{node_name()}' ({node_op() if callable(node_op) else '?'}): "
        lines.append(f"{node}{err.desc()}")
    return "\n  ".join(lines) or "no parser error reported"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_engine(onnx_path: Union[str, Path], engine_path: Union[str, Path], cfg: Optional[BuildConfig] = None) -> BuildResult:
    """Parse the ONNX file, build a serialized engine and write it (atomically) to `engine_path`.

    Raises:
        TensorRTUnavailable: no TensorRT 10.
        gssplat_ros.export.trt_ops.TensorRTCompatibilityError: the graph uses ops TensorRT 10.3 cannot build.
        EngineBuildError: the parser or the builder failed (TensorRT's messages included).
    """
    cfg = cfg or BuildConfig()
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {cfg.precision!r}")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.exists():
        raise FileNotFoundError(f"ONNX file not found: {onnx_path}")
    if read_metadata(onnx_path).get("scatter") == "host":  # half of the onnxruntime-CPU pair: not an encoder
        raise ValueError(f"{onnx_path.name} is one graph of the onnxruntime-CPU pair (--scatter host); "
                         "TensorRT builds the portable graph (--scatter elements)")  # fmt: skip
    trt = require_tensorrt()
    warnings: list[str] = []
    if cfg.check_ops:
        warnings += [str(p) for p in assert_tensorrt_compatible(onnx_path)]

    t0 = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    # ScatterElements with a reduction (the voxel pooling) is imported through TensorRT's plugin library.
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}:\n  {_parser_errors(parser)}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(cfg.workspace_mb) << 20)
    if cfg.optimization_level is not None:
        config.builder_optimization_level = int(cfg.optimization_level)
    pinned = 0
    if cfg.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        if cfg.pin_fp32_geometry:
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
            pinned = _pin_geometry_fp32(trt, network)
    cache_path = Path(cfg.timing_cache) if cfg.timing_cache else None
    blob = cache_path.read_bytes() if cache_path and cache_path.exists() else b""
    timing_cache = config.create_timing_cache(blob)
    if not config.set_timing_cache(timing_cache, False):  # False: a cache from another GPU/version is rejected
        warnings.append(f"timing cache {cache_path} does not match this GPU / TensorRT; starting a fresh one")
        config.set_timing_cache(config.create_timing_cache(b""), False)

    log.info("building TensorRT %s engine (%s) from %s", trt.__version__, cfg.precision, onnx_path.name)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} (see TensorRT's log above)")
    _write_atomic(engine_path, bytes(serialized))
    if cache_path is not None:
        _write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    seconds = time.perf_counter() - t0
    log.info("wrote %s in %.1f s", engine_path, seconds)
    return BuildResult(engine_path, seconds, str(trt.__version__), cfg.precision, pinned, warnings)
